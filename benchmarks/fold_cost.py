"""What a committee's fold models cost, and what cheaper fold models do to cross-validation.

A committee (:class:`surrogates.models.CommitteeRegressor`, what ``auto`` and ``cv`` campaigns fit) fits the
model on all rows and K fold models beside it; the fold models give the out-of-fold predictions (the ``cv``
verification's ρ) and the epistemic std. Two settings make them cheaper:

- ``--model gbt``: ``GBTRegressor(fold_iter=N)`` boosts the fold models N rounds at the same total shrinkage
  (``--settings 300,150,100,60``; 300 is the model's own rounds);
- ``--model gp``: ``GPRegressor(fold_maxiter=N)`` caps each fold model's hyperparameter search, which starts where
  the full model's ended, at N L-BFGS-B iterations (``--settings none,20,8``; none: to convergence; cold: searches
  to convergence from the default start instead of the full model's optimum).

For each setting this prints, on the shared TF-NAS table (both devices) or on the ``mbconv`` rows of the
databases given with ``--db`` (e.g. those ``benchmarks/default_run_clock.py`` leaves, pooled; duplicates by their
median), over random training sets of each size (``--splits`` of them; one thread, as in the engine):

- the committee's fit seconds and its ``predict_dist`` seconds on 4,000 candidates (a query's pool);
- the out-of-fold ρ minus the full model's ρ on 4,000 rows it never saw: the verification's pessimism (negative:
  the stop rule sees a worse model than the one kept, and stops later; positive: a false stop risk).

    python benchmarks/fold_cost.py --splits 6                          # gbt, TF-NAS: about 4 minutes, alone
    python benchmarks/fold_cost.py --model gp --sizes 40,100,200 --splits 4 --settings none,20
    python benchmarks/fold_cost.py --model gp --db /tmp/run-*/acquisition.sqlite --sizes 60,120,160 --splits 3
    python benchmarks/fold_cost.py --model gp --sizes 200,320 --splits 4 --settings none,cold
    python benchmarks/fold_cost.py --model gp --settings none --sizes 60,120,180 --splits 4 --member-workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from studies.sources import ReplaySource  # noqa: E402
from surrogates.features import FeatureEncoder  # noqa: E402
from surrogates.metrics import spearman  # noqa: E402
from surrogates.models import CommitteeRegressor, GBTRegressor  # noqa: E402
from surrogates.models.gp import GPRegressor  # noqa: E402

TFNAS = os.path.join(ROOT, "..", "shared", "data", "tfnas_mbconv_latency.csv")
PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
DEVICES = ("xeon_gold6130_bs1_1thread_pytorch1.1", "titan_rtx_bs32_pytorch1.1")


def _tables(dbs: list[str] | None):
    """``(name, X, y)`` per table: the TF-NAS devices, or the pooled mbconv rows of ``dbs``."""
    if not dbs:
        for dev in DEVICES:
            table = ReplaySource(csv=TFNAS, params=PARAMS, where=[f"device={dev}"]).table()
            yield dev.split("_")[0], FeatureEncoder(table.family).transform(table.configs), table.latency_ms
        return
    from profiler.families import get_family

    rows: dict[str, tuple[dict, list[float]]] = {}
    for db in dbs:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        for key, cfg, ms in con.execute("select key, config, median_ms from measurements where family = 'mbconv' "
                                        "and status = 'ok' and protocol = 'adaptive-quick-v1'"):
            rows.setdefault(key, (json.loads(cfg), []))[1].append(ms)
        con.close()
    keys = sorted(rows)
    X = FeatureEncoder(get_family("mbconv")).transform([rows[k][0] for k in keys])
    yield f"mbconv ({len(keys)} rows)", X, np.array([statistics.median(rows[k][1]) for k in keys])


class _ColdFolds(GPRegressor):
    """A GP whose committee fold models start their searches from the default start, not the full model's optimum."""

    def _warm_from(self, fitted: GPRegressor) -> None:
        pass


def _model(kind: str, setting: str, seed: int):
    if kind == "gbt":
        return GBTRegressor(fold_iter=int(setting), random_state=seed)
    if setting == "cold":
        return _ColdFolds(random_state=seed)
    return GPRegressor(fold_maxiter=None if setting == "none" else int(setting), random_state=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("gbt", "gp"), default="gbt")
    ap.add_argument("--settings", help="fold_iter (gbt; default 300,150,100,60) or fold_maxiter (gp; none = to "
                    "convergence, cold = from the default start; default none,20,8) values")
    ap.add_argument("--db", nargs="+", help="stores whose mbconv rows to pool instead of the TF-NAS table")
    ap.add_argument("--sizes", default="40,100,200,400")
    ap.add_argument("--splits", type=int, default=6)
    ap.add_argument("--member-workers", type=int, default=0, help="also fit each committee with its fold models in "
                    "this many worker processes (a fleet's single campaign: FitPool.map), on the same rows: its "
                    "seconds and the ratio to the fit in this process")
    args = ap.parse_args()
    if args.member_workers < 0:
        ap.error(f"--member-workers {args.member_workers}: expected an integer >= 0")
    from threadpoolctl import threadpool_limits

    from acquisition.loop.fitpool import FitPool
    from surrogates.models.committee import members_with

    pool = FitPool(args.member_workers).__enter__() if args.member_workers else None
    if pool is not None:  # started and its imports done before the first timed fit
        pool.map(statistics.median, [([1.0],)] * args.member_workers)

    sizes = [int(s) for s in args.sizes.split(",")]
    folds = (args.settings or ("300,150,100,60" if args.model == "gbt" else "none,20,8")).split(",")
    what = "fold_iter" if args.model == "gbt" else "fold_maxiter"
    extra = f" fit s, fold models in {args.member_workers} workers | ratio |" if pool is not None else ""
    print(f"| table | rows | {what} | fit s | predict s (4,000) | out-of-fold ρ − never-seen ρ |{extra}")
    print("| --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if pool is not None else ""))
    for name, X, y in _tables(args.db):
        for n in sizes:
            for fi in folds:
                fit, pred, gap, there = [], [], [], []
                for s in range(args.splits):
                    idx = np.random.default_rng(s).permutation(len(y))
                    tr, te = idx[:n], idx[n:n + 4000]
                    m = CommitteeRegressor(_model(args.model, fi, s), random_state=s)
                    with threadpool_limits(1):
                        t0 = time.perf_counter()
                        m.fit(X[tr], y[tr])
                        t1 = time.perf_counter()
                        d = m.predict_dist(X[te])
                        t2 = time.perf_counter()
                    fit.append(t1 - t0)
                    pred.append(t2 - t1)
                    gap.append(spearman(y[tr], np.exp(m.oof_log_)) - spearman(y[te], d.latency))
                    if pool is not None:
                        w = CommitteeRegressor(_model(args.model, fi, s), random_state=s)
                        with threadpool_limits(1), members_with(pool.map):
                            t0 = time.perf_counter()
                            w.fit(X[tr], y[tr])
                            there.append(time.perf_counter() - t0)
                ratio = statistics.median(b / a for a, b in zip(fit, there, strict=True)) if there else 0.0
                cols = f" {statistics.median(there):.2f} | {ratio:.2f} |" if there else ""
                print(f"| {name} | {n} | {fi} | {statistics.median(fit):.2f} | "
                      f"{statistics.median(pred):.2f} | {statistics.mean(gap):+.4f} |{cols}", flush=True)
    if pool is not None:
        pool.close()


if __name__ == "__main__":
    main()
