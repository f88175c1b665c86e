"""Samples to a verified target against the query's pool size: one panel per table and target, each seed a dot
and the median a line, sequential and pipelined, from study databases that ``benchmarks/pipeline_study.py
--pool-size N`` wrote (one per pool size).

    python benchmarks/pool_plot.py --panel "Xeon, rho 0.98" 4000=benchmarks/out/lazy/study.sqlite \\
        250=benchmarks/out/pool250/study.sqlite 60=benchmarks/out/pool60/study.sqlite \\
        --panel "Titan RTX, rho 0.95" 4000=benchmarks/out/titan4000/study.sqlite \\
        60=benchmarks/out/titan60/study.sqlite \\
        --out docs/benchmarks/pool-size.png
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ARMS = {"default@sequential": ("sequential", "tab:blue"), "default": ("pipelined", "tab:orange")}


def _entry(text: str) -> tuple[int, str]:
    pool, sep, path = text.partition("=")
    if not sep or not pool.isdigit() or int(pool) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected POOL=STUDY.sqlite with POOL a positive integer")
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{path!r}: no such study database")
    return int(pool), path


def panels(argv: list[str]) -> list[tuple[str, list[tuple[int, str]]]]:
    """``--panel TITLE POOL=DB ...`` groups, in order."""
    out: list[tuple[str, list[tuple[int, str]]]] = []
    it = iter(argv)
    for tok in it:
        if tok == "--panel":
            title = next(it, None)
            if title is None:
                raise argparse.ArgumentTypeError("--panel needs a title")
            out.append((title, []))
        elif not out:
            raise argparse.ArgumentTypeError(f"{tok!r} before the first --panel")
        else:
            out[-1][1].append(_entry(tok))
    if not out or any(not entries for _, entries in out):
        raise argparse.ArgumentTypeError("give at least one --panel TITLE POOL=DB ...")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="pool-size.png")
    args, rest = ap.parse_known_args()
    try:
        groups = panels(rest)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studies.study import load_study

    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for ax, (title, entries) in zip(axes[0], groups, strict=True):
        for arm, (label, colour) in ARMS.items():
            xs, meds = [], []
            for pool, db in sorted(entries):
                n = [v[0] for v in load_study(db).to_target(arm).values() if v[0] != float("inf")]
                ax.scatter([pool * (0.93 if arm == "default" else 1.07)] * len(n), n, s=10, color=colour, alpha=0.5)
                xs.append(pool)
                meds.append(statistics.median(n) if n else float("nan"))
            ax.plot(xs, meds, "-o", color=colour, label=f"{label} (median)")
        ax.set_xscale("log")
        ax.set_xticks(sorted(p for p, _ in entries), [str(p) for p, _ in sorted(entries)])
        ax.set_title(title)
        ax.set_xlabel("pool size (candidates per query)")
        ax.set_ylabel("samples to a verified target")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
