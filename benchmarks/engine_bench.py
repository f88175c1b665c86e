"""Engine benchmark: samples and profiling hours to a Spearman target, per strategy and seed, live on this CPU.

    python benchmarks/engine_bench.py --family mbconv --strategies random,diverse --seeds 0,1,2 --target 0.98

Every campaign runs in one database (``--db``): for a given seed all strategies share the validation set and
the initial design, which are profiled once and reused. Hours to target are therefore computed from the
measurements each campaign used (the cost the ledger charged for them, reused or not), not from what a
campaign happened to profile itself: training hours = sum of the cost of its training measurements at the
iteration where the stop rule fired. Prints a table and the median ratio against ``random``; writes JSON.
Run it alone on the machine (it profiles).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from acquisition.campaign import CampaignSpec  # noqa: E402
from acquisition.engine import run_campaign  # noqa: E402
from acquisition.store import Store  # noqa: E402
from profiler.families import get_family  # noqa: E402
from profiler.worker import Profiler  # noqa: E402


def campaign_figures(store: Store, name: str) -> dict[str, Any]:
    its = store.iterations(name)
    train = store.members(name, "train")
    met = next((it for it in its if it["met_streak"] >= 2), None)
    n = met["n_train"] if met else (its[-1]["n_train"] if its else 0)
    used = [r for r in train if r["status"] == "ok"][:n]
    return {"met": met is not None, "samples": n, "train_hours": sum(r["cost_s"] for r in used) / 3600,
            "rho": (met or (its[-1] if its else {})).get("spearman"), "iterations": len(its)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="mbconv")
    ap.add_argument("--strategies", default="random,diverse")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--model", default="quantile-gbt")
    ap.add_argument("--budget-samples", type=int, default=600)
    ap.add_argument("--validation-size", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--initial-size", type=int, default=20)
    ap.add_argument("--db", default=os.path.join(ROOT, "benchmarks", "out", "engine.sqlite"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out", "engine_bench.json"))
    args = ap.parse_args()
    fam = get_family(args.family)
    rows = []
    with Store(args.db) as store, Profiler("cpu") as prof:
        for seed in (int(s) for s in args.seeds.split(",")):
            for strat in args.strategies.split(","):
                name = f"{args.family}-{strat}-s{seed}-t{args.target}-b{args.batch_size}-i{args.initial_size}"
                spec = CampaignSpec(name=name, family=args.family, device="cpu", strategy=strat, model=args.model,
                                    target_spearman=args.target, budget_samples=args.budget_samples,
                                    validation_size=args.validation_size, seed=seed, batch_size=args.batch_size,
                                    initial_size=args.initial_size)
                t0 = time.perf_counter()
                res = run_campaign(store, spec, prof, fam)
                wall = time.perf_counter() - t0
                fig = campaign_figures(store, name)
                fig.update({"strategy": strat, "seed": seed, "state": res.state, "wall_s": wall,
                            "engine_s": res.engine_s, "overhead_share": res.overhead_share})
                rows.append(fig)
                print(f"{strat:<12} seed {seed}: {res.state:<6} samples {fig['samples']:4d}  train hours "
                      f"{fig['train_hours']:.4f}  rho {fig['rho']:.4f}  engine {res.engine_s:.1f} s of {wall:.0f} s "
                      f"({100 * res.overhead_share:.1f} %)", flush=True)
    print("\nstrategy      met   median samples   median train hours   ratio vs random (hours)")
    base = [r["train_hours"] for r in rows if r["strategy"] == "random"]
    for strat in args.strategies.split(","):
        rs = [r for r in rows if r["strategy"] == strat]
        h = statistics.median(r["train_hours"] for r in rs)
        ratio = h / statistics.median(base) if base else float("nan")
        print(f"{strat:<12} {sum(r['met'] for r in rs)}/{len(rs)}   {statistics.median(r['samples'] for r in rs):>14}"
              f"   {h:>18.4f}   {ratio:.2f}")
    share = statistics.median(r["overhead_share"] for r in rows)
    print(f"engine overhead (fit + evaluate + query + export) / campaign wall: median {100 * share:.1f} %")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=2, default=float)


if __name__ == "__main__":
    main()
