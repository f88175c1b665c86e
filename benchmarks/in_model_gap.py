"""Why a model is slower than the sum of its parts measured alone: the parts timed warm, and timed with the caches
flushed before every call, against the model timed whole (this CPU, one thread, batch 1).

Usage (from the repository root, alone on the machine):

    python benchmarks/in_model_gap.py --model torchvision:mobilenet_v2 --model torchvision:resnet50

For each model, its decomposition's parts (blocks and glue layers, each rebuilt alone from its configuration or
spec, exactly as the profiler builds them) are timed ``--repeats`` times each, in two ways:

- **warm**: back to back, as the profiler's protocols time a block (its weights stay in cache between calls);
- **flushed**: a ``--flush-mb`` buffer is written between calls (untimed), so each call starts with its weights
  and input out of the caches, as in a model where other layers ran in between;
- **weights cold**: flushed, then the input read once more (untimed): in a model, the layer before has just
  written it, so only the weights come from memory.

The model is timed whole the same warm way (one inference after another: between two calls of a part, every
other part ran). Prints per model the median whole-model time, the sums of the parts' medians, and the gap of
each sum to the whole; a sum that closes the gap says the cache is the cause.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.getcwd())


def _time(fn, x, repeats: int, flush=None) -> float:
    """Median ms of ``fn(x)`` over ``repeats`` calls (``flush()`` before each, untimed)."""
    import torch

    with torch.no_grad():
        for _ in range(3):
            fn(x)
        out = []
        for _ in range(repeats):
            if flush is not None:
                flush()
            t0 = time.perf_counter()
            fn(x)
            out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--flush-mb", type=int, default=64, help="buffer written between flushed calls (64 MB)")
    args = ap.parse_args()
    import torch

    from profiler.decompose import from_torch
    from profiler.families import get_family
    from profiler.glue import GLUE
    from profiler.zoo import load_model

    torch.set_num_threads(1)
    buf = torch.empty(args.flush_mb * 2**20 // 4)

    def flush() -> None:
        buf.add_(1.0)  # reads and writes the whole buffer: evicts what the last call left in the caches

    def flush_weights(x):  # the caches flushed, then the input read again: in a model the layer before wrote it
        def f() -> None:
            flush()
            x.sum()
        return f

    print(f"{'model':<32} {'whole ms':>9} {'parts warm':>11} {'gap':>7} {'parts flushed':>14} {'gap':>7} "
          f"{'weights cold':>13} {'gap':>7}")
    for name in args.model:
        model = load_model(name).eval()
        d = from_torch(model, name=name)
        x = torch.randn(*d.input_shape)
        whole = _time(model, x, args.repeats)
        warm = flushed = cold = 0.0
        for p in d.parts:
            if p.kind == "block":
                fam = get_family(p.family)
                mod, inp = fam.build(p.config).eval(), fam.make_input(p.config)
            else:
                mod, inp = GLUE.build(p.op).eval(), GLUE.make_input(p.op)
            warm += _time(mod, inp, args.repeats)
            flushed += _time(mod, inp, args.repeats, flush)
            cold += _time(mod, inp, args.repeats, flush_weights(inp))
        print(f"{name:<32} {whole:>9.2f} {warm:>11.2f} {100 * (warm / whole - 1):>+6.1f}% {flushed:>14.2f} "
              f"{100 * (flushed / whole - 1):>+6.1f}% {cold:>13.2f} {100 * (cold / whole - 1):>+6.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
