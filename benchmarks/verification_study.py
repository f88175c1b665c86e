"""Which estimate of never-seen ρ, and which stop rule on it (issue 27): read back from a study's campaigns.

A study run to its budget (``python -m studies compare ... `` without ``--stop-at-target``) stores, per
iteration of every campaign, the model's ρ on never-seen rows (the judge: the truth), the committee's
out-of-fold ρ on the random share (``cv_spearman``), and with every ask the prediction the asking iteration's
model made before the row was measured (``pred_log``, ``pred_n``). From these this script recomputes, for every
iteration, each candidate estimate of the current model's never-seen ρ:

- ``preq-G``: prequential rows predicted by models fitted on at least G x the current rows (G = 0: every row);
- ``cv``: out-of-fold ρ of the random share (five fold models on 4/5 of the rows);

and prints (1) each estimate's bias and spread against the truth per sample-size band, (2) for each stop rule
(the one-sided bound of an estimate at a level, on ``k`` consecutive iterations; and the former streak rule), the
false-stop rate (never-seen ρ below the target at the stop), the median ratio of samples/hours at the stop to the
oracle's (the first iteration where the never-seen ρ met the target), and the number of runs that never stopped.

    python benchmarks/verification_study.py --db benchmarks/out/verify/xeon.sqlite --db ... --target 0.99
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sqlite3
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from acquisition.stopping import MIN_VERIFY_ROWS
from acquisition.verification import Evidence, estimate, spearman_lower
from studies.study import campaign_stem

WINDOWS = (0.0, 0.25, 0.5, 0.75)


def campaigns(study_db: str, arm: str) -> list[tuple[str, int, str]]:
    """(seed database, seed, campaign name) of ``arm`` for every seed of the study."""
    out = []
    for path in sorted(glob.glob(study_db + ".campaigns/seed-*.sqlite")):
        seed = int(os.path.basename(path)[5:-7])
        out.append((path, seed, f"{campaign_stem(arm)}-s{seed}"))
    return out


def trajectory(path: str, name: str) -> list[dict]:
    """Per iteration: n, hours, truth, cv and every prequential estimate."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    its = [dict(r) for r in con.execute("select * from iterations where campaign = ? order by id", [name])]
    rows = con.execute("select m.key, m.min_ms, cm.drawn from campaign_measurements cm join measurements m on "
                       "m.id = cm.measurement_id where cm.campaign = ? and cm.role = 'train' and m.status = 'ok' "
                       "order by cm.rowid", [name]).fetchall()
    asks = [dict(r) for r in con.execute("select key, drawn, batch, pred_log, pred_n from campaign_asks where "
                                         "campaign = ? order by id", [name])]
    con.close()
    order = {r["key"]: i for i, r in enumerate(rows)}
    label = {r["key"]: r["min_ms"] for r in rows}
    ev_rows = [a for a in asks if a["drawn"] == "random" and a["pred_log"] is not None and a["key"] in label]
    out = []
    for it in its:
        n = int(it["n_train"])
        seen = [a for a in ev_rows if order[a["key"]] < n]
        ev = Evidence(np.log([label[a["key"]] for a in seen]), np.array([a["pred_log"] for a in seen]),
                      np.array([a["pred_n"] for a in seen], dtype=float))
        n_random = sum(1 for r in rows[:n] if r["drawn"] == "random")
        rec = {"n": n, "hours": it["profiling_s"] / 3600, "truth": it["test_spearman"],
               "cv": (it["cv_spearman"], n_random)}
        for g in WINDOWS:
            m = estimate(ev, n, window=g)
            rec[f"preq-{g:g}"] = (m["spearman"], int(m["n_verify"]))
        out.append(rec)
    return out


def lower(est: tuple[float, int], level: float) -> float:
    rho, n = est
    return spearman_lower(rho, n, level) if rho is not None and not math.isnan(rho) else float("nan")


def rules(level_list=(0.95, 0.975)) -> dict[str, callable]:
    out = {}
    for est in ("cv", *[f"preq-{g:g}" for g in WINDOWS], "max(cv,preq-0.5)", "max(cv,preq-0.75)"):
        for level in level_list:
            for k in (1, 2):
                out[f"{est} lo{level:g} x{k}"] = (est, level, k)
    return out


def first_stop(traj: list[dict], target: float, est: str, level: float, k: int) -> int | None:
    streak = 0
    for i, r in enumerate(traj):
        if est == "streak":
            ok = r["cv"][0] is not None and r["cv"][0] >= target and r["cv"][1] >= MIN_VERIFY_ROWS
        elif est.startswith("max("):  # either bound, each at half the error (Bonferroni)
            a, b = est[4:-1].split(",")
            half = 1 - (1 - level) / 2
            ok = any(math.isfinite(lo) and lo >= target for lo in (lower(r[a], half), lower(r[b], half)))
        else:
            lo = lower(r[est], level)
            ok = math.isfinite(lo) and lo >= target
        streak = streak + 1 if ok else 0
        if streak >= k:
            return i
    return None


def oracle(traj: list[dict], target: float) -> int | None:
    return next((i for i, r in enumerate(traj) if r["truth"] is not None and r["truth"] >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", action="append", required=True, help="a study database (repeatable)")
    ap.add_argument("--arm", default="default")
    ap.add_argument("--target", type=float, required=True)
    ap.add_argument("--json", default=None, help="write the figures here too")
    ap.add_argument("--pair", default=None, help="another arm of the same studies (e.g. default, for the "
                                                  "default+transfer arm): paired hours ratios, each arm stopped by "
                                                  "the same rule")
    ap.add_argument("--baseline", default=None, help="an arm of the same studies (e.g. random): paired hours ratios "
                                                      "of each rule's verified stops against its verified stops")
    args = ap.parse_args()
    trajs = []
    pair: dict[tuple[str, int], list[dict]] = {}  # (study, seed) -> the paired arm's trajectory
    base: dict[tuple[str, int], float] = {}  # (study, seed) -> the baseline's hours at a verified stop (inf: none)
    base_end: dict[tuple[str, int], float] = {}  # (study, seed) -> the baseline's whole run
    for db in args.db:
        for path, seed, name in campaigns(db, args.arm):
            t = trajectory(path, name)
            if t:
                trajs.append((os.path.basename(db), seed, t))
            if args.pair:
                pt = trajectory(path, f"{campaign_stem(args.pair)}-s{seed}")
                if pt:
                    pair[(os.path.basename(db), seed)] = pt
        if args.baseline:
            from studies.study import load_study

            res = load_study(db)
            stops = res.stops(args.baseline)
            for seed, (_, hours) in res.to_target(args.baseline).items():
                base[(os.path.basename(db), seed)] = hours
                base_end[(os.path.basename(db), seed)] = stops[seed]["end_hours"]
    print(f"{len(trajs)} campaigns ({args.arm}) from {', '.join(args.db)}; target rho {args.target}")
    # (1) bias and spread against the truth, by band of training rows
    bands = [(0, 60), (60, 150), (150, 300), (300, 600), (600, 10_000)]
    ests = ["cv", *[f"preq-{g:g}" for g in WINDOWS]]
    table: dict = defaultdict(list)
    for _, _, traj in trajs:
        for r in traj:
            if r["truth"] is None:
                continue
            for e in ests:
                v, n = r[e]
                if v is not None and not math.isnan(v) and n >= 3:
                    b = next(b for b in bands if b[0] <= r["n"] < b[1])
                    table[(e, b)].append((v - r["truth"], n))
    print("\nestimate - never-seen rho: median [10th, 90th percentile] (median rows), by training rows")
    print("estimate     " + "".join(f"{f'{a}-{b}':>28}" for a, b in bands))
    figures: dict = {"bias": {}, "rules": {}}
    for e in ests:
        cells = []
        for b in bands:
            d = table.get((e, b))
            if not d:
                cells.append(f"{'-':>28}")
                continue
            x = np.array([v for v, _ in d])
            q = np.percentile(x, [50, 10, 90])
            cells.append(f"{q[0]:+.4f} [{q[1]:+.4f},{q[2]:+.4f}] ({int(np.median([n for _, n in d]))})".rjust(28))
            figures["bias"][f"{e} {b[0]}-{b[1]}"] = {"median": q[0], "p10": q[1], "p90": q[2], "runs": len(d)}
        print(f"{e:<13}" + "".join(cells))
    # (2) stop rules
    print("\nrule                   false stops   never stopped   samples / oracle (median)   hours / oracle"
          + ("   hours / baseline (median, pairs)" if base else ""))
    all_rules = {"streak (cv, 50 rows, x2)": ("streak", 0.0, 2), **rules()}
    for label, (est, level, k) in all_rules.items():
        false = never = 0
        ratio_n, ratio_h, paired, vs_pair = [], [], [], []
        for study, seed, traj in trajs:
            i = first_stop(traj, args.target, est, level, k)
            o = oracle(traj, args.target)
            b = base.get((study, seed), math.inf)
            verified = i is not None and traj[i]["truth"] is not None and traj[i]["truth"] >= args.target
            if base and not (math.isinf(b) and not verified):  # censored on one side: a bound, as the studies do
                paired.append((traj[i]["hours"] if verified else traj[-1]["hours"])
                              / (b if math.isfinite(b) else base_end[(study, seed)]))
            pt = pair.get((study, seed))
            if pt is not None:
                j = first_stop(pt, args.target, est, level, k)
                ok_j = j is not None and pt[j]["truth"] is not None and pt[j]["truth"] >= args.target
                if verified or ok_j:  # both censored: unknown, left out (as the studies do)
                    vs_pair.append((traj[i]["hours"] if verified else traj[-1]["hours"])
                                   / (pt[j]["hours"] if ok_j else pt[-1]["hours"]))
            if i is None:
                never += 1
                continue
            if traj[i]["truth"] is None or traj[i]["truth"] < args.target:
                false += 1
            if o is not None:
                ratio_n.append(traj[i]["n"] / traj[o]["n"])
                ratio_h.append(traj[i]["hours"] / traj[o]["hours"])
        med_n = float(np.median(ratio_n)) if ratio_n else float("nan")
        med_h = float(np.median(ratio_h)) if ratio_h else float("nan")
        pr = f"   {float(np.median(paired)):.2f} ({len(paired)})" if paired else ""
        pr += f"   vs {args.pair}: {float(np.median(vs_pair)):.2f} ({len(vs_pair)})" if vs_pair else ""
        print(f"{label:<26}{false:>3}/{len(trajs):<3}      {never:>3}/{len(trajs):<3}          {med_n:>6.2f}"
              f"                  {med_h:>6.2f}{pr}")
        figures["rules"][label] = {"false_stops": false, "runs": len(trajs), "never": never,
                                   "samples_ratio": med_n, "hours_ratio": med_h,
                                   "baseline_ratio": float(np.median(paired)) if paired else None,
                                   "pair_ratio": float(np.median(vs_pair)) if vs_pair else None}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()
