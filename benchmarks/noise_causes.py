"""What makes a block's minimum disagree between processes? The experiments behind docs/benchmarks/2026-11-30-noise.md.

Run it alone on the machine. Two experiments:

    python benchmarks/noise_causes.py passes --n 40 --variants base,hugetlb --passes 3
    python benchmarks/noise_causes.py timeseries --seconds 120

``passes``: the same ``--n`` random configurations (seed 7) of mbconv, resv1 and resv2 are timed with the
adaptive protocol's three placements in fresh processes, the variants alternating pass by pass so that each
sees the same machine. Per variant: the median and worst relative difference between its passes, and how many
configurations differ by more than 10 %. Variants (each a candidate cause, switched off or changed):

- ``base``: the profiler's worker set-up (pinned malloc, transparent huge pages for large tensors, one thread);
- ``hugetlb``: glibc backs the whole heap with transparent huge pages (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``):
  small activations too get physically contiguous pages (cache-set placement no longer random per process);
- ``noaslr``: address-space randomisation off for the worker (the same virtual layout in every process);
- ``affinity``: the worker pinned to the last core (no migrations between cores);
- ``interleave``: placements interleaved across 8 blocks, so a block's placements lie seconds apart;
- ``extra``: placements added while the placements' minima scatter by more than 5 % (up to 6; the default now).

``timeseries``: the blocks that disagreed most in the last ``passes`` run, built once in one process and timed
back to back for ``--seconds``: how far the fastest call moves between windows of 0.5-8 s of the same module.
Results go to ``benchmarks/out/noise/causes-*.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "benchmarks", "out", "noise")
VARIANTS = {"base": {}, "hugetlb": {"env": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}}, "noaslr": {"noaslr": True},
            "affinity": {"affinity": True}, "interleave": {"group": 8}, "extra": {"extra": True}}
WORKER_ENV = {"THP_MEM_ALLOC_ENABLE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _worker(conn: Any, jobs: list[tuple[str, dict]], opts: dict[str, Any]) -> None:
    from profiler._worker_main import _process_warmup, pin_malloc

    pin_malloc()
    import torch

    from profiler.devices import parse_device
    from profiler.families import get_family
    from profiler.protocol import AdaptiveProtocol, Timing, run_samples

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    _process_warmup(parse_device("cpu"))
    if opts.get("affinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    proto = AdaptiveProtocol(max_noise=0.05 if opts.get("extra") else None)
    rng = np.random.default_rng()
    runs: dict[int, list[Any]] = {k: [] for k in range(len(jobs))}
    group = opts.get("group", 1)
    pads = []

    def place(k: int, p: int) -> None:
        fam = get_family(jobs[k][0])
        cfg = fam.validate(jobs[k][1])
        if p:
            pads.append(torch.empty(int(rng.integers(16, 1 << 16))))
        m, x = fam.build(cfg).eval(), fam.make_input(cfg)
        with torch.inference_mode():
            runs[k].append(run_samples(proto.per_placement(first=p == 0), lambda: m(x)))

    for g0 in range(0, len(jobs), group):
        members = range(g0, min(g0 + group, len(jobs)))
        if group > 1:  # placement p of every member before placement p + 1 of any
            for p in range(proto.placements):
                for k in members:
                    place(k, p)
        else:
            for k in members:
                p = 0
                while proto.wants_another_placement([float(r.samples.min()) for r in runs[k]]):
                    place(k, p)
                    p += 1
    out = []
    for k in range(len(jobs)):
        t = Timing.combine(runs[k])
        out.append({"family": jobs[k][0], "config": jobs[k][1], "min_ms": t.min_ms, "placements": t.placements,
                    "placement_minima": [float(r.samples.min()) for r in runs[k]], "timed_s": t.timed_s})
    conn.send(out)


def _run_pass(jobs: list[tuple[str, dict]], opts: dict[str, Any]) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    saved = dict(os.environ)
    os.environ.update({**WORKER_ENV, **opts.get("env", {})})
    libc = ctypes.CDLL("libc.so.6")
    old = libc.personality(0xFFFFFFFF)
    try:
        if opts.get("noaslr"):
            libc.personality(old | 0x0040000)  # ADDR_NO_RANDOMIZE, inherited by the spawned interpreter
        proc = ctx.Process(target=_worker, args=(child, jobs, opts))
        proc.start()
    finally:
        libc.personality(old)
        os.environ.clear()
        os.environ.update(saved)
    res = parent.recv()
    proc.join()
    return res


def passes(args: argparse.Namespace) -> dict[str, Any]:
    from profiler.families import get_family

    names = args.variants.split(",")
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        raise SystemExit(f"--variants: unknown {bad}; expected some of {sorted(VARIANTS)}")
    jobs = [(f, c) for f in ("mbconv", "resv1", "resv2")
            for c in get_family(f).space.sample(args.n, method="random", seed=7)]
    results: dict[str, list[list[dict[str, Any]]]] = {v: [] for v in names}
    for i in range(args.passes):
        for v in names:
            t0 = time.perf_counter()
            results[v].append(_run_pass(jobs, VARIANTS[v]))
            print(f"pass {i + 1}/{args.passes} {v}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    summary = {}
    for v in names:
        mins = np.array([[r["min_ms"] for r in p] for p in results[v]])
        pairs = []
        for a, b in itertools.combinations(range(len(mins)), 2):
            d = np.abs(mins[a] - mins[b]) / np.minimum(mins[a], mins[b])
            pairs.append({"median": float(np.median(d)), "worst": float(d.max()), "over10": int((d > 0.1).sum())})
        summary[v] = {"pairs": pairs, "timed_s": float(np.mean([[r["timed_s"] for r in p] for p in results[v]]))}
        print(f"{v:10s} " + "  ".join(f"median {100 * q['median']:.1f} % worst {100 * q['worst']:.0f} % "
                                      f">10 %: {q['over10']}" for q in pairs)
              + f"  (timed {summary[v]['timed_s']:.3f} s per block)")
    res = {"n": args.n, "variants": names, "summary": summary, "results": results}
    _write("causes-passes.json", res)
    return res


def timeseries(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from profiler._worker_main import pin_malloc
    from profiler.families import get_family

    os.environ.update(WORKER_ENV)
    pin_malloc()
    torch.set_num_threads(1)
    with open(os.path.join(OUT, "causes-passes.json")) as f:
        prev = json.load(f)
    first = prev["results"][prev["variants"][0]]
    mins = np.array([[r["min_ms"] for r in p] for p in first])
    worst = np.argsort(mins.max(0) / mins.min(0))[-args.blocks:]
    mods = []
    for k in worst:
        r = first[0][int(k)]
        fam = get_family(r["family"])
        cfg = fam.validate(r["config"])
        mods.append((fam.build(cfg).eval(), fam.make_input(cfg), r["family"], cfg))
    samples: list[tuple[int, float, float]] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for m, x, *_ in mods:
            m(x)
        while time.perf_counter() - t0 < args.seconds:
            for j, (m, x, *_) in enumerate(mods):
                for _ in range(3):
                    a = time.perf_counter_ns()
                    m(x)
                    samples.append((j, time.perf_counter() - t0, (time.perf_counter_ns() - a) / 1e6))
    s = np.array(samples)
    blocks = []
    for j, (_, _, fam, cfg) in enumerate(mods):
        v, t = s[s[:, 0] == j, 2], s[s[:, 0] == j, 1]
        row = {"family": fam, "config": cfg, "median_ms": float(np.median(v)), "min_ms": float(v.min()), "windows": {}}
        for w in (0.5, 1, 2, 4, 8):
            span = w * len(mods)  # the block gets about 1/len(mods) of the wall time
            m = np.array([v[(t >= e) & (t < e + span)].min() for e in np.arange(0, t.max(), span)
                          if ((t >= e) & (t < e + span)).sum() > 2])
            row["windows"][w] = {"k": int(m.size), "range": float(m.max() / m.min() - 1),
                                 "p90_p10": float(np.percentile(m, 90) / np.percentile(m, 10) - 1)}
        blocks.append(row)
        print(f"{fam} {row['median_ms']:.2f} ms (min {row['min_ms']:.2f}): fastest call per window moves by "
              + ", ".join(f"{100 * q['range']:.0f} % ({w} s of its own time)" for w, q in row["windows"].items()))
    res = {"seconds": args.seconds, "blocks": blocks}
    _write("causes-timeseries.json", res)
    return res


def _write(name: str, res: dict[str, Any]) -> None:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(res, f, default=str)
    print(f"wrote {os.path.join(OUT, name)}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("passes")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--variants", default="base,hugetlb,noaslr,affinity,interleave,extra")
    t = sub.add_parser("timeseries")
    t.add_argument("--seconds", type=float, default=120.0)
    t.add_argument("--blocks", type=int, default=4)
    args = ap.parse_args()
    (passes if args.what == "passes" else timeseries)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
