"""Noise-floor benchmark (issue 18): repeatability between fresh processes, cost per measurement, and `doctor`.

Run it alone on the machine (timings of two things at once distort each other):

    python benchmarks/noise_bench.py --n 100                 # repeatability of the set-ups, side by side
    python benchmarks/noise_bench.py --n 0 --doctor          # doctor on this machine idle, then made busy

Repeatability: the same ``--n`` random configurations (seed 7) of each family are profiled in fresh worker
processes, one pass after another, alternating the set-ups so that each sees the same machine: ``before``
(session 10's: the worker not pinned to a core), ``default`` (this version's: pinned) and ``extra`` (pinned,
plus extra placements while a measurement's placements scatter by more than 5 %). For each set-up and family:
the median and worst relative difference between its two passes, how many configurations differ by more than
10 %, Spearman's rho, seconds per measurement (the charged cost, worker start excluded), how many measurements
took extra placements, and whether a measurement's own noise estimate flags the configurations that then
disagree. Every measurement's statistics are kept in the JSON (``rows``).

Doctor: ``python -m acquisition doctor`` on the idle machine, then with a competing busy loop pinned to another
core; both verdicts and readings are printed. Results go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from profiler.devices import CpuDevice
from profiler.families import get_family
from profiler.protocol import AdaptiveProtocol
from profiler.worker import Profiler

# name: (device, protocol). "before": session 10's set-up (worker not pinned); "default": this version's;
# "extra": the default plus extra placements while a measurement's placements scatter by more than 5 %
SETUPS = {"before": (CpuDevice(pin=False), AdaptiveProtocol()), "default": (CpuDevice(), AdaptiveProtocol()),
          "extra": (CpuDevice(), AdaptiveProtocol(max_noise=0.05))}


def one_pass(setup: tuple[Any, Any], jobs: list[tuple[Any, dict[str, Any]]], label: str) -> list[Any]:
    """Profile every job in one fresh worker process."""
    out = []
    t0 = time.perf_counter()
    with Profiler(*setup) as prof:
        for i, (fam, cfg) in enumerate(jobs):
            out.append(prof.measure(fam, cfg))
            if (i + 1) % 50 == 0:
                print(f"  {label}: {i + 1}/{len(jobs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return out


def compare(a: list[Any], b: list[Any], idx: list[int]) -> dict[str, Any]:
    ok = [i for i in idx if a[i].ok and b[i].ok]
    ma = np.array([a[i].timing.min_ms for i in ok])
    mb = np.array([b[i].timing.min_ms for i in ok])
    d = np.abs(ma - mb) / np.minimum(ma, mb)
    noise = np.array([max(a[i].timing.noise or 0.0, b[i].timing.noise or 0.0) for i in ok])
    flagged = noise > 0.05
    cost = np.array([a[i].cost_s for i in ok] + [b[i].cost_s for i in ok])
    extra = np.array([a[i].timing.placements > 3 for i in ok] + [b[i].timing.placements > 3 for i in ok])
    return {"n": len(ok), "failed": len(idx) - len(ok), "median_diff": float(np.median(d)),
            "worst_diff": float(d.max()), "over10": int((d > 0.10).sum()), "within10": float(np.mean(d <= 0.10)),
            "spearman": float(stats.spearmanr(ma, mb).statistic), "cost_mean_s": float(cost.mean()),
            "cost_median_s": float(np.median(cost)), "extra_placements": float(extra.mean()),
            "noise_median": float(np.median(noise)),
            "over10_flagged": int((d[flagged] > 0.10).sum()), "flagged": int(flagged.sum()),
            "worst": sorted(({"config": a[ok[j]].config, "a_ms": float(ma[j]), "b_ms": float(mb[j]),
                              "noise_a": a[ok[j]].timing.noise, "noise_b": b[ok[j]].timing.noise,
                              "rel_diff": float(d[j])} for j in np.argsort(-d)[:3]), key=lambda r: -r["rel_diff"])}


def _row(fam: Any, m: Any) -> dict[str, Any]:
    t = m.timing
    return {"family": fam.name, "key": m.key, "ok": m.ok, "cost_s": m.cost_s,
            **({k: getattr(t, k) for k in ("min_ms", "p10_ms", "median_ms", "n", "noise", "placements", "spread")}
               if t is not None else {})}


def repeatability(families: list[str], n: int, seed: int, names: list[str]) -> dict[str, Any]:
    jobs = []
    for name in families:
        fam = get_family(name)
        jobs += [(fam, c) for c in fam.space.sample(n, method="random", seed=seed)]
    passes: dict[str, list[list[Any]]] = {k: [] for k in names}
    for rep in ("A", "B"):
        for k in names:
            print(f"repeatability: {k} pass {rep} ({len(jobs)} configurations, a fresh process)", file=sys.stderr)
            passes[k].append(one_pass(SETUPS[k], jobs, f"{k} {rep}"))
    res: dict[str, Any] = {"rows": {k: [[_row(f, m) for (f, _), m in zip(jobs, p, strict=True)] for p in passes[k]]
                                    for k in names}}
    for k in names:
        a, b = passes[k]
        res[k] = {name: compare(a, b, [i for i, (f, _) in enumerate(jobs) if f.name == name]) for name in families}
        res[k]["all"] = compare(a, b, list(range(len(jobs))))
    return res


def _busy_loop_on_another_core() -> subprocess.Popen:
    cores = sorted(os.sched_getaffinity(0))
    code = f"import os, sys; os.sched_setaffinity(0, {{{cores[-1]}}})\nwhile True: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def doctor(db: str) -> dict[str, Any]:
    out = {}
    for state in ("idle", "busy"):
        hog = _busy_loop_on_another_core() if state == "busy" else None
        try:
            time.sleep(1.0 if hog else 0.0)
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "acquisition", "doctor", "--db", db, "--json"],
                               capture_output=True, text=True)
            wall = time.perf_counter() - t0
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        try:
            rep = json.loads(r.stdout)
        except json.JSONDecodeError:
            rep = {"stdout": r.stdout[-2000:], "stderr": r.stderr[-2000:]}
        out[state] = {"exit_code": r.returncode, "wall_s": wall, "report": rep}
        print(f"doctor, machine {state}: exit {r.returncode}, verdict {rep.get('verdict')}, {wall:.0f} s; "
              f"reasons: {rep.get('reasons')}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="mbconv,resv1,resv2")
    ap.add_argument("--n", type=int, default=100, help="configurations per family (0: skip repeatability)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--setups", default="before,default,extra")
    ap.add_argument("--doctor", action="store_true", help="also run doctor idle and busy")
    ap.add_argument("--out", default="benchmarks/out/noise/noise_bench.json")
    args = ap.parse_args()
    names = args.setups.split(",")
    bad = [k for k in names if k not in SETUPS]
    if bad:
        ap.error(f"--setups: unknown {bad}; expected some of {sorted(SETUPS)}")
    res: dict[str, Any] = {"n": args.n, "seed": args.seed, "load_before": os.getloadavg()}
    if args.n > 0:
        res["repeatability"] = repeatability(args.families.split(","), args.n, args.seed, names)
        print(f"{'set-up':8s} {'family':7s} {'median':>7s} {'worst':>6s} {'>10%':>5s} {'rho':>7s} {'s/meas':>7s} "
              f"{'extra':>6s} {'flagged (>10% among them)':>26s}")
        for k in names:
            for fam, r in res["repeatability"][k].items():
                print(f"{k:8s} {fam:7s} {100 * r['median_diff']:6.2f}% {100 * r['worst_diff']:5.1f}% {r['over10']:5d} "
                      f"{r['spearman']:7.4f} {r['cost_mean_s']:7.3f} {100 * r['extra_placements']:5.0f}% "
                      f"{r['flagged']:14d} ({r['over10_flagged']})")
    if args.doctor:
        with tempfile.TemporaryDirectory() as tmp:
            res["doctor"] = doctor(os.path.join(tmp, "doctor.sqlite"))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
