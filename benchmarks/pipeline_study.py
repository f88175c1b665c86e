"""What pipelining costs in samples, and what it saves in wall time (issue 30), on the shared TF-NAS table.

One study (:class:`studies.study.Study`), two arms run on the same seeds, paired seed by seed:

- ``default@sequential``: ``run``'s default configuration, one step after the other (fit, choose, measure);
- ``default``: the same, pipelined (``pipeline=auto`` on a replay table): every batch chosen by a model one batch
  old while the device measures the one before, a stop decided while a batch is in flight.

Each campaign runs to its target (``--stop-at-target``, the default here: a stop then pays what was in flight) or
its budget. Figures, medians over seeds with their 95 % interval:

- samples and hours to a verified target per arm (``samples`` include the blocks the device had measured or
  started when a pipelined stop was decided: ``IterationRecord.inflight``), false stops;
- the paired ratio pipelined / sequential of samples and hours to target (target: <= 1.05);
- each arm's device clock (a replay table is measured on a virtual clock: each block its modelled cost, each
  engine step its real seconds on this machine): wall, idle share of the wall.

Run it alone on the machine (the engine's seconds are timed):

    python benchmarks/pipeline_study.py --seeds 10 --out benchmarks/out/pipeline          # ~15 min on 2 cores
    python benchmarks/pipeline_study.py --seeds 10 --target 0.95 --device titan_rtx_bs32_pytorch1.1 ...
    python benchmarks/pipeline_study.py --seeds 10 --cost-from-db acquisition.sqlite --name own-costs ...
    python benchmarks/pipeline_study.py --summarise benchmarks/out/pipeline/study.sqlite [--name NAME]
    python benchmarks/pipeline_study.py --summarise new/study.sqlite --against old/study.sqlite   # a change's cost
    python benchmarks/pipeline_study.py --seeds 10 --pool-size 60 --out ...       # small pools (plug-in families)
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from studies.sources import ReplaySource  # noqa: E402
from studies.study import Study, load_study, paired_ratio  # noqa: E402

TFNAS = os.path.join(ROOT, "..", "shared", "data", "tfnas_mbconv_latency.csv")
PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
SEQ, PIPE = "default@sequential", "default"


def _clock(db: str, study: str) -> dict[str, dict[str, float]]:
    """Per arm: median wall, idle share and wall ratio against the sequential arm (paired by seed)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("select arm, seed, device_wall_s, device_idle_s from study_runs where study = ?",
                       [study]).fetchall()
    con.close()
    by = {(a, s): (w, i) for a, s, w, i in rows if w}
    out = {}
    for arm in (SEQ, PIPE):
        runs = [(s, w, i) for (a, s), (w, i) in by.items() if a == arm]
        if not runs:
            continue
        ratios = [w / by[(SEQ, s)][0] for s, w, _ in runs if (SEQ, s) in by]
        out[arm] = {"wall_s": statistics.median(w for _, w, _ in runs),
                    "idle_share": statistics.median(i / w for _, w, i in runs),
                    "wall_ratio": statistics.median(ratios) if ratios else float("nan")}
    return out


def summarise(db: str, name: str | None = None) -> dict:
    result = load_study(db, name)
    s = result.summary(baseline=SEQ)
    out = {"study": result.name, "target": s["target_spearman"], "seeds": s["seeds"], "arms": {}}
    for arm, e in s["arms"].items():
        out["arms"][arm] = {"verified": f"{e['met']}/{e['runs']}", "false_stops": e["false_stops"],
                            "samples": e["samples_to_target"], "hours": e["hours_to_target"]}
    for i, what in ((0, "samples"), (1, "hours")):
        out[f"{what}_ratio"] = paired_ratio(result, PIPE, SEQ, i, 0.95)
    out["clock"] = _clock(db, result.name)
    return out


def against(db: str, old_db: str, name: str | None = None) -> dict:
    """Per arm: samples to a verified target in ``db`` against ``old_db`` (the same study run by other code, e.g.
    before a change to the models), paired by seed; a seed censored in either is left out and counted."""
    from studies._stats import median_ci

    new, old = load_study(db, name), load_study(old_db, name)
    out = {}
    for arm in (SEQ, PIPE):
        a, b = new.to_target(arm), old.to_target(arm)
        pairs = [(s, a[s][0], b[s][0]) for s in sorted(set(a) & set(b))]
        ratios = [x / y for _, x, y in pairs if x != float("inf") and y != float("inf")]
        med, lo, hi = median_ci(ratios, 0.95) if ratios else (float("nan"),) * 3
        out[arm] = {"ratio": med, "lo": lo, "hi": hi, "pairs": len(ratios), "censored": len(pairs) - len(ratios),
                    "per_seed": [(s, x, y) for s, x, y in pairs]}
    return out


def _fmt(ci: dict) -> str:
    return f"{ci['median']:.3g} [{ci['lo']:.3g}, {ci['hi']:.3g}]"


def show(out: dict) -> None:
    print(f"study {out['study']}: target rho {out['target']}, {out['seeds']} seeds")
    print("| arm | verified stops | false stops | samples to target | hours to target | wall (virtual) | idle share |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arm, e in out["arms"].items():
        c = out["clock"].get(arm, {})
        print(f"| {arm} | {e['verified']} | {e['false_stops']} | {_fmt(e['samples'])} | {_fmt(e['hours'])} | "
              f"{c.get('wall_s', float('nan')):.1f} s | {100 * c.get('idle_share', float('nan')):.1f} % |")
    for what in ("samples", "hours"):
        r = out[f"{what}_ratio"]
        bound = f" ({r['bound']} bound)" if r.get("bound") else ""
        print(f"{what} ratio pipelined / sequential: {_fmt(r)}{bound}, {r['pairs']} pairs, "
              f"Wilcoxon p {r['wilcoxon_p']:.2f}")
    if PIPE in out["clock"]:
        print(f"wall ratio pipelined / sequential (virtual clock): {out['clock'][PIPE]['wall_ratio']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--device", default="xeon_gold6130_bs1_1thread_pytorch1.1", help="the table's device column")
    ap.add_argument("--budget", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--pool-size", type=int, default=None, help="candidates per query (default: the engine's)")
    ap.add_argument("--run-to-budget", action="store_true", help="keep acquiring after the stop (learning curves)")
    ap.add_argument("--cost-from-db", metavar="DB", help="charge what this machine's profiler did: the replay cost "
                    "fitted on DB's ledger (default: the documented adaptive protocol's cost model)")
    ap.add_argument("--name", help="study name (default pipeline-TARGET)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/out/pipeline")
    ap.add_argument("--summarise", metavar="DB", help="print the figures of a study database and stop")
    ap.add_argument("--against", metavar="OLD_DB", help="with --summarise: each arm's samples to target paired by "
                    "seed against the same study in OLD_DB (run by other code)")
    args = ap.parse_args()
    if args.pool_size is not None and args.pool_size < 1:
        ap.error(f"--pool-size {args.pool_size}: expected an integer >= 1")
    if args.summarise:
        show(summarise(args.summarise, args.name))
        if args.against:
            for arm, r in against(args.summarise, args.against, args.name).items():
                print(f"{arm}: samples to target, this / {args.against}: {r['ratio']:.3g} [{r['lo']:.3g}, "
                      f"{r['hi']:.3g}] over {r['pairs']} seeds ({r['censored']} censored left out); per seed "
                      + ", ".join(f"{s}: {x:g}/{y:g}" for s, x, y in r["per_seed"]))
        return
    os.makedirs(args.out, exist_ok=True)
    source = ReplaySource(csv=TFNAS, params=PARAMS, latency_col="latency_ms", where=[f"device={args.device}"],
                          cost_db=args.cost_from_db)
    db = os.path.join(args.out, "study.sqlite")
    study = Study(args.name or f"pipeline-{args.target}", source, arms=[SEQ, PIPE], seeds=args.seeds,
                  target_spearman=args.target, budget_samples=args.budget, batch_size=args.batch_size,
                  initial_size=args.batch_size, run_to_budget=args.run_to_budget, shared_store=False, db=db,
                  **({"pool_size": args.pool_size} if args.pool_size is not None else {})).validate()
    study.run(n_jobs=args.jobs, progress=True)
    out = summarise(db, study.name)
    with open(os.path.join(args.out, f"{study.name}.json"), "w") as fh:
        json.dump(out, fh, indent=1, default=str)
    show(out)


if __name__ == "__main__":
    main()
