"""Profiler benchmark: repeatability, adaptive vs fixed protocol, overhead, throughput, sum-of-blocks check.

Prints the figures the profiler issue asks for and writes them as JSON (``--out``). Run it alone on the
machine (never beside other timing work):

    python benchmarks/profiler_bench.py --device cpu --n 100

Sections:
- repeatability: the same ``--n`` random configs of each family profiled in two fresh worker processes, one
  after the other; Spearman of the two mins, median and max relative difference, configs worse than 10 %.
- adaptive vs fixed: the paper's fixed protocol (``--fixed-repeats`` invocations, min) on a random subset of the
  same configs, within a time budget; median relative difference of the statistic, and the cost ratio.
- overhead: total seconds / timed seconds per measurement (median over blocks >= 1 ms).
- throughput: measurements per minute with the default protocol, per family (worker start-up excluded).
- network: chains of compatible mbconv blocks; the sum of the blocks timed one by one vs the chain timed as one
  network, in the same process (the figure that tells whether summed block latencies are valid).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from profiler.devices import parse_device
from profiler.families import get_family
from profiler.protocol import AdaptiveProtocol, FixedProtocol
from profiler.worker import Profiler


def rel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.minimum(a, b)


def run_pass(device: Any, protocol: Any, jobs: list[tuple[Any, dict]], label: str) -> tuple[list, float]:
    """Profile ``jobs`` in one fresh worker; returns the measurements and the wall time after start-up."""
    with Profiler(device, protocol) as prof:
        t0 = time.perf_counter()
        out = []
        for i, (fam, cfg) in enumerate(jobs):
            out.append(prof.measure(fam, cfg))
            if (i + 1) % 50 == 0:
                print(f"  {label}: {i + 1}/{len(jobs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        return out, time.perf_counter() - t0


def repeatability(device: Any, families: list[str], n: int, seed: int) -> dict[str, Any]:
    jobs = []
    for name in families:
        fam = get_family(name)
        jobs += [(fam, c) for c in fam.space.sample(n, method="random", seed=seed)]
    print(f"repeatability: {len(jobs)} configs, pass A", file=sys.stderr)
    a, wall_a = run_pass(device, AdaptiveProtocol(), jobs, "A")
    print("repeatability: pass B (a fresh process)", file=sys.stderr)
    b, wall_b = run_pass(device, AdaptiveProtocol(), jobs, "B")
    res: dict[str, Any] = {"families": {}}
    for name in families:
        idx = [i for i, (f, _) in enumerate(jobs) if f.name == name and a[i].ok and b[i].ok]
        ma = np.array([a[i].timing.min_ms for i in idx])
        mb = np.array([b[i].timing.min_ms for i in idx])
        d = rel_diff(ma, mb)
        fam_jobs = [i for i, (f, _) in enumerate(jobs) if f.name == name]
        worst = sorted(range(len(idx)), key=lambda j: -d[j])[:5]
        res.setdefault("worst", []).extend(
            {"family": name, "config": jobs[idx[j]][1], "a_ms": ma[j], "b_ms": mb[j], "rel_diff": float(d[j]),
             "spread_a": a[idx[j]].timing.spread, "spread_b": b[idx[j]].timing.spread,
             "n_a": a[idx[j]].timing.n, "n_b": b[idx[j]].timing.n} for j in worst if d[j] > 0.05)
        wall = sum(a[i].cost_s for i in fam_jobs)
        res["families"][name] = {
            "configs": len(fam_jobs), "ok_both": len(idx),
            "failed": sum(not a[i].ok or not b[i].ok for i in fam_jobs),
            "spearman": float(stats.spearmanr(ma, mb).statistic),
            "median_rel_diff": float(np.median(d)), "median_signed_a_minus_b": float(np.median((ma - mb) / mb)),
            "p90_rel_diff": float(np.percentile(d, 90)),
            "max_rel_diff": float(d.max()), "worse_than_10pct": int((d > 0.10).sum()),
            "unstable_flagged": sum(not a[i].stable or not b[i].stable for i in idx),
            "remeasured": sum((a[i].attempts > 1) + (b[i].attempts > 1) for i in idx),
            "latency_ms": {"min": float(ma.min()), "median": float(np.median(ma)), "max": float(ma.max())},
            "throughput_per_min": len(fam_jobs) / (wall / 60),
        }
    ok = [m for m in a + b if m.ok]
    ratios = np.array([m.cost_s / m.timing.timed_s for m in ok if m.timing.min_ms >= 1.0])
    res["overhead_median_total_over_timed_ge_1ms"] = float(np.median(ratios))
    res["overhead_p90_total_over_timed_ge_1ms"] = float(np.percentile(ratios, 90))
    res["throughput_per_min_all"] = len(jobs) / (wall_a / 60)
    res["wall_s"] = {"A": wall_a, "B": wall_b}
    res["_jobs"], res["_a"] = jobs, a
    return res


def adaptive_vs_fixed(device: Any, jobs: list, adaptive: list, repeats: int, budget_s: float,
                      seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(jobs))
    chosen, est = [], 0.0
    for i in order:  # a random subset whose estimated fixed-protocol time fits the budget
        m = adaptive[i]
        if not m.ok:
            continue
        cost = (repeats + 10) * m.timing.median_ms / 1e3 + 0.05
        if est + cost > budget_s:
            continue
        chosen.append(i)
        est += cost
    print(f"adaptive vs fixed: {len(chosen)} configs, fixed protocol ~{est:.0f} s", file=sys.stderr)
    fixed, _ = run_pass(device, FixedProtocol(repeats=repeats), [jobs[i] for i in chosen], "fixed")
    pairs = [(adaptive[i], f) for i, f in zip(chosen, fixed, strict=True) if f.ok]
    ad = np.array([p[0].timing.min_ms for p in pairs])
    fx = np.array([p[1].timing.min_ms for p in pairs])
    d = rel_diff(ad, fx)
    cost_ad = sum(p[0].cost_s for p in pairs)
    cost_fx = sum(p[1].cost_s for p in pairs)
    return {"configs": len(pairs), "repeats": repeats, "median_rel_diff_min": float(np.median(d)),
            "p90_rel_diff_min": float(np.percentile(d, 90)), "spearman": float(stats.spearmanr(ad, fx).statistic),
            "adaptive_bias_median": float(np.median((ad - fx) / fx)),
            "cost_adaptive_s": cost_ad, "cost_fixed_s": cost_fx, "cost_ratio": cost_ad / cost_fx,
            "per_family": {name: int(sum(1 for i in chosen if jobs[i][0].name == name))
                           for name in sorted({jobs[i][0].name for i in chosen})}}


def chain_configs(rng: np.random.Generator, depth: int) -> list[dict]:
    """A chain of mbconv configs whose shapes connect (cin of block i+1 = cout of block i, hw follows)."""
    fam = get_family("mbconv")
    hw, cin = int(rng.choice([32, 56, 112])), int(rng.choice([16, 24, 32]))
    out = []
    while len(out) < depth:
        cfg = {"input_hw": hw, "cin": cin, "cout": int(rng.choice([cin, min(1024, cin * 2)])),
               "expansion": int(rng.choice([3, 4, 6])), "kernel": int(rng.choice([3, 5, 7])),
               "stride": int(rng.choice([1, 2])) if hw > 8 else 1, "se": bool(rng.random() < 0.5),
               "act": str(rng.choice(["relu", "hswish"]))}
        if not fam.space.is_valid(cfg):
            cfg["expansion"] = 1
            if not fam.space.is_valid(cfg):
                break
        out.append(cfg)
        hw, cin = (hw - 1) // cfg["stride"] + 1, cfg["cout"]
    return out


def network_check(device_spec: str, networks: int, depth: int, seed: int) -> dict[str, Any]:
    """Sum of isolated block mins vs the min of the chained network, all in this process (one thread)."""
    import torch

    from profiler._worker_main import pin_malloc
    from profiler.protocol import run_protocol

    dev = parse_device(device_spec)
    if dev.kind == "cpu":
        torch.set_num_threads(dev.threads)
        pin_malloc()
    dev.setup()
    fam = get_family("mbconv")
    rng = np.random.default_rng(seed)
    rows = []
    proto = AdaptiveProtocol(min_seconds=0.3)
    for _ in range(networks):
        cfgs = chain_configs(rng, depth)
        blocks = [fam.build(c).to(dev.torch_device) for c in cfgs]
        net = torch.nn.Sequential(*blocks).eval()
        x0 = fam.make_input(cfgs[0], device=dev.torch_device)
        with torch.inference_mode():
            xs = [x0]
            for b in blocks[:-1]:
                xs.append(b(xs[-1]))
            block_ms = [run_protocol(proto, lambda b=b, x=x: b(x), dev.timer()).min_ms
                        for b, x in zip(blocks, xs, strict=True)]
            net_ms = run_protocol(proto, lambda net=net, x0=x0: net(x0), dev.timer()).min_ms
        rows.append({"blocks": len(cfgs), "sum_blocks_ms": float(sum(block_ms)), "network_ms": float(net_ms)})
    s = np.array([r["sum_blocks_ms"] for r in rows])
    n = np.array([r["network_ms"] for r in rows])
    return {"device": dev.spec, "networks": rows, "median_ratio_network_over_sum": float(np.median(n / s)),
            "spearman": float(stats.spearmanr(s, n).statistic) if len(rows) > 2 else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--families", default="mbconv,resv1,resv2")
    ap.add_argument("--n", type=int, default=100, help="configs per family (default 100)")
    ap.add_argument("--fixed-repeats", type=int, default=1000)
    ap.add_argument("--fixed-budget-s", type=float, default=300.0, help="time budget of the fixed protocol pass")
    ap.add_argument("--networks", type=int, default=8, help="chained networks for the sum-of-blocks check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: fixed,network")
    ap.add_argument("--out", default="benchmarks/out/profiler_bench.json")
    args = ap.parse_args()
    device = parse_device(args.device)
    device.check_available()
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.time()
    rep = repeatability(device, args.families.split(","), args.n, args.seed)
    jobs, a = rep.pop("_jobs"), rep.pop("_a")
    result: dict[str, Any] = {"device": device.spec, "n_per_family": args.n, "repeatability": rep}
    if "fixed" not in skip:
        result["adaptive_vs_fixed"] = adaptive_vs_fixed(device, jobs, a, args.fixed_repeats, args.fixed_budget_s,
                                                        args.seed)
    if "network" not in skip and args.networks > 0:
        result["network"] = network_check(args.device, args.networks, 6, args.seed)
    result["wall_s"] = time.time() - t0

    print(f"\n== profiler benchmark on {device.spec} ({args.n} random configs per family) ==")
    print("repeatability (two fresh processes):")
    print("  family   ok   spearman  median|d|  p90|d|  max|d|  >10%  unstable  remeasured  lat ms (min/med/max)"
          "   per min  median(A-B)/B")
    for name, r in rep["families"].items():
        lat = r["latency_ms"]
        print(f"  {name:7s} {r['ok_both']:4d}   {r['spearman']:.4f}   {100 * r['median_rel_diff']:6.2f}%  "
              f"{100 * r['p90_rel_diff']:5.1f}%  {100 * r['max_rel_diff']:5.1f}%  {r['worse_than_10pct']:4d}  "
              f"{r['unstable_flagged']:8d}  {r['remeasured']:10d}  {lat['min']:.3f}/{lat['median']:.2f}/"
              f"{lat['max']:.1f}  {r['throughput_per_min']:8.0f}  {100 * r['median_signed_a_minus_b']:+.2f}%")
    for w in rep.get("worst", []):
        print(f"  {w['family']} {100 * w['rel_diff']:5.1f}%  A {w['a_ms']:.3f} ms  B {w['b_ms']:.3f} ms  "
              f"spread {w['spread_a']:.2f}/{w['spread_b']:.2f}  n {w['n_a']}/{w['n_b']}  {w['config']}")
    print(f"overhead total/timed (blocks >= 1 ms): median {rep['overhead_median_total_over_timed_ge_1ms']:.2f}, "
          f"p90 {rep['overhead_p90_total_over_timed_ge_1ms']:.2f}")
    print(f"throughput, all families: {rep['throughput_per_min_all']:.0f} measurements/min")
    if "adaptive_vs_fixed" in result:
        f = result["adaptive_vs_fixed"]
        print(f"adaptive vs fixed ({f['repeats']} invocations, min) on {f['configs']} configs {f['per_family']}: "
              f"median |d| {100 * f['median_rel_diff_min']:.2f}%, p90 {100 * f['p90_rel_diff_min']:.1f}%, "
              f"median bias {100 * f['adaptive_bias_median']:+.2f}%, cost ratio {100 * f['cost_ratio']:.1f}% "
              f"({f['cost_adaptive_s']:.0f} s vs {f['cost_fixed_s']:.0f} s)")
    if "network" in result:
        nw = result["network"]
        print(f"sum of blocks vs chained network ({len(nw['networks'])} chains of mbconv): median network/sum "
              f"{nw['median_ratio_network_over_sum']:.3f}, spearman {nw['spearman']}")
    print(f"wall time {result['wall_s']:.0f} s")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
