"""Counting a candidate pool for a plug-in family without closed-form counts: before (real modules) and after
(torch's meta device, cached by configuration key), and what it does to a campaign's engine overhead.

A plug-in family that does not override ``counts`` used to be counted by building each block for real and
running it on zeros: every query built its whole pool (4,000 blocks). Now ``BlockFamily.counts`` builds the block
on the meta device (shapes only) and caches the result by key. Two plug-in-like families are timed, neither
overriding ``counts``: ``plugin_mbconv`` (the built-in ``mbconv`` blocks, so its counts can be checked against
the closed form) and the README's ``sepconv``. One thread, as in the engine.

    python benchmarks/plugin_counts_bench.py                     # counting: 4,000 candidates per family
    python benchmarks/plugin_counts_bench.py --before-n 500      # time the real-module path on 500 only
    python benchmarks/plugin_counts_bench.py --campaign          # + a small live campaign, fresh pools and budget
    python benchmarks/plugin_counts_bench.py --skip-counting --campaign --repeats 3   # the campaigns, medians

Sections:
- counting: CPU seconds (this process) to count the pool on real modules (before), on the meta device with an
  empty cache (after, cold) and again (after, cached), and to encode the pool (the engine's query step: counts
  + features); how many of the traced counts differ from the closed form (``plugin_mbconv``: must be 0).
- campaign (``--campaign``): a live campaign of ``plugin_mbconv`` on this CPU (``--budget-samples`` blocks,
  pool ``--pool-size``, cv verification), once counting a fresh pool every query, once with the engine's count
  budget (:mod:`acquisition.loop.query`: fresh candidates per query as many as 5 % of the batch's device time
  counts, topped up with the earlier pools' unasked ones), and once with the budget and the engine's default pool;
  the query seconds and the engine overhead share (engine seconds / (engine + device seconds)) of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
from torch import nn

from profiler.families import BlockFamily, get_family, module_counts, register_family
from profiler.space import Categorical, Choice, Integer, Space


class PlugInMBConv(BlockFamily):
    """The built-in ``mbconv`` blocks as a plug-in would give them: build and input shape, no counts."""

    name = "plugin_mbconv"
    space = get_family("mbconv").space

    def build(self, config: Any) -> nn.Module:
        return get_family("mbconv").build(config)

    def input_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        return get_family("mbconv").input_shape(config, batch_size)


class SepConv(BlockFamily):
    """The README's plug-in example: depthwise k x k, then pointwise 1 x 1."""

    name = "sepconv"
    space = Space([Integer("input_hw", 7, 112, log=True), Integer("channels", 16, 512, step=16, log=True),
                   Choice("kernel", (3, 5)), Categorical("act", ("relu", "gelu"))])

    def build(self, config: Any) -> nn.Module:
        c = self.validate(config)
        ch, act = c["channels"], {"relu": nn.ReLU, "gelu": nn.GELU}[c["act"]]
        return nn.Sequential(nn.Conv2d(ch, ch, c["kernel"], padding=c["kernel"] // 2, groups=ch), act(),
                             nn.Conv2d(ch, ch, 1), act()).eval()

    def input_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, config["channels"], config["input_hw"], config["input_hw"])


def _time(fn) -> tuple[Any, float]:
    """``fn()`` and the CPU seconds it took (this process: robust to other work on a shared machine)."""
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def counting(family_cls: type[BlockFamily], n: int, before_n: int, seed: int) -> dict[str, Any]:
    from surrogates import FeatureEncoder

    probe = family_cls()
    cfgs = [probe.validate(c) for c in probe.space.sample(n, method="random", seed=seed)]
    for c in probe.space.sample(20, method="random", seed=seed + 1):  # one-off first-call costs of both paths
        probe.counts(c)
        module_counts(probe.build(c), probe.input_shape(c))
    sub = cfgs[:before_n]
    before_real, t_before = _time(lambda: [module_counts(probe.build(c), probe.input_shape(c)) for c in sub])
    fam = family_cls()  # a fresh instance: an empty cache
    after, t_cold = _time(lambda: [fam.counts_of_valid(c) for c in cfgs])
    _, t_warm = _time(lambda: [fam.counts_of_valid(c) for c in cfgs])
    _, t_encode = _time(lambda: FeatureEncoder(family_cls()).transform(cfgs, validated=True))
    out = {"family": probe.name, "candidates": n, "before_timed_on": len(sub),
           "before_s": t_before * n / len(sub), "after_cold_s": t_cold, "after_cached_s": t_warm,
           "encode_cold_s": t_encode, "speedup_cold": t_before * n / len(sub) / t_cold,
           "traced_equals_real": sum(a == b and a.work == b.work for a, b in zip(after, before_real, strict=False)),
           "compared_with_real": len(sub)}
    if probe.name == "plugin_mbconv":
        closed = get_family("mbconv")
        out["differ_from_closed_form"] = sum(closed.counts_of_valid(c) != a for c, a in zip(cfgs, after, strict=True))
    return out


def campaign(pool_size: int, budget_samples: int, seed: int, fresh: bool = True) -> list[dict[str, Any]]:
    """The same live campaign of ``plugin_mbconv``: every query counting a fresh ``pool_size`` pool, with the
    engine's count budget (:data:`acquisition.loop.query.COUNT_SHARE`), and with the budget and the engine's default
    pool."""
    import acquisition.loop.query as query
    from acquisition.campaign import CampaignSpec
    from acquisition.engine import run_campaign
    from acquisition.report import build_report
    from acquisition.store import Store
    from profiler.worker import Profiler

    rows = []
    share = query.COUNT_SHARE
    default_pool = CampaignSpec(name="x", family="mbconv").pool_size
    arms = [(f"fresh {pool_size}-candidate pools", float("inf"), pool_size)] if fresh else []
    arms.append((f"count budget ({share:g} of a batch), pool {pool_size}", share, pool_size))
    if default_pool != pool_size:
        arms.append((f"count budget, the default pool ({default_pool})", share, default_pool))
    for label, count_share, pool in arms:
        fam = register_family(PlugInMBConv(), replace=True)  # a fresh instance: an empty counts cache
        query.COUNT_SHARE = count_share
        try:
            with tempfile.TemporaryDirectory() as tmp, Store(os.path.join(tmp, "c.sqlite")) as store, \
                    Profiler("cpu") as prof:
                spec = CampaignSpec(name="plugin", family=fam.name, strategy="representative", model="gbt",
                                    budget_samples=budget_samples, batch_size=20, initial_size=20,
                                    pool_size=pool, seed=seed, fidelity="full", stop_on_target=False)
                res = run_campaign(store, spec, prof, fam)
                rep = build_report(store)
        finally:
            query.COUNT_SHARE = share
        camp, acts = rep["campaigns"][0], {r["activity"]: r["seconds"] for r in rep["by_activity"]}
        rows.append({"counting": label, "iterations": len(res.iterations), "samples": res.n_train,
                     "device_s": res.profiling_hours * 3600, "engine_s": camp["engine_seconds"],
                     "query_s": acts.get("query", 0.0), "fit_s": acts.get("fit", 0.0),
                     "overhead_share": camp["overhead_share"], "wall_s": res.wall_s})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4000, help="candidates in the pool (the engine's default pool)")
    ap.add_argument("--before-n", type=int, default=None, help="time the real-module path on this many only "
                    "(extrapolated to --n); default: all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--campaign", action="store_true", help="also run a small live campaign, fresh pools and "
                    "the count budget")
    ap.add_argument("--pool-size", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=1, help="campaign runs per arm (the fresh-pool arm runs once)")
    ap.add_argument("--skip-counting", action="store_true", help="only the campaign section")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-pool campaign (two minutes)")
    ap.add_argument("--budget-samples", type=int, default=80)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    for flag, v in (("--repeats", args.repeats), ("--pool-size", args.pool_size), ("--n", args.n)):
        if v < 1:
            ap.error(f"{flag} {v}: expected an integer >= 1")
    torch.set_num_threads(1)
    figures: dict[str, Any] = {"counting": []}
    for cls in () if args.skip_counting else (PlugInMBConv, SepConv):
        r = counting(cls, args.n, args.before_n or args.n, args.seed)
        figures["counting"].append(r)
        print(f"{r['family']}: {r['candidates']} candidates, CPU seconds: real modules {r['before_s']:.1f} s "
              f"(timed on {r['before_timed_on']}), meta {r['after_cold_s']:.2f} s ({r['speedup_cold']:.0f}x), cached "
              f"{r['after_cached_s']:.3f} s; encoding the pool {r['encode_cold_s']:.2f} s; traced == real on "
              f"{r['traced_equals_real']}/{r['compared_with_real']}"
              + (f"; differ from the closed form: {r['differ_from_closed_form']}" if "differ_from_closed_form" in r
                 else ""), flush=True)
    if args.campaign:
        figures["campaign"] = []
        for rep in range(args.repeats):
            rows = campaign(args.pool_size, args.budget_samples, args.seed, fresh=rep == 0 and not args.no_fresh)
            figures["campaign"] += rows
            for r in rows:
                print(f"campaign, {r['counting']}: {r['iterations']} iterations, {r['samples']} samples, device "
                      f"{r['device_s']:.0f} s, engine {r['engine_s']:.1f} s (query {r['query_s']:.1f} s, fit "
                      f"{r['fit_s']:.1f} s), overhead {100 * r['overhead_share']:.1f} %, wall {r['wall_s']:.0f} s",
                      flush=True)
        by: dict[str, list[float]] = {}
        for r in figures["campaign"]:
            by.setdefault(r["counting"], []).append(r["overhead_share"])
        for label, shares in by.items():
            print(f"median overhead, {label}: {100 * statistics.median(shares):.1f} % over {len(shares)} run(s) "
                  f"({', '.join(f'{100 * x:.1f}' for x in shares)})")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
