"""A committee's fit with its fold models in 2 worker processes (FitPool.map) against in this process.

The TF-NAS table's two devices, `gp` and `gbt` committees at 60, 120 and 180 rows, 8 random training sets each, the
two ways in alternating order on the same rows, one BLAS thread (as in the engine): medians and the paired ratio
(its range). What ``MEMBER_POOL_ROWS`` (acquisition.loop.models) was chosen by.

    python benchmarks/fold_workers_bench.py      # ~2 min, alone on the machine

``--run N``: instead, what ``run`` gains on a device whose host has cores to spare (a GPU's; ``run_workers``): N
seeds of the default campaign on the TF-NAS Xeon rows (a replay table: measured on the virtual clock, each block
its recorded cost, each engine step its real seconds), pipelined, to a verified rho of 0.98, with ``fit_workers`` 0
and 2, the two in alternating order: samples, whether both took the same iterations on the same rows to the same end
(the same decisions; the blocks in flight at the stop, counted in the samples, depend on the engine's real
seconds), the engine's seconds, the device's idle share, and the paired ratio of engine seconds.

    python benchmarks/fold_workers_bench.py --run 5    # ~10 min, alone on the machine
"""

import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import surrogates.models.committee as cm  # noqa: E402
from acquisition.loop.fitpool import FitPool  # noqa: E402
from studies.sources import ReplaySource  # noqa: E402
from surrogates.features import FeatureEncoder  # noqa: E402
from surrogates.models import CommitteeRegressor, GBTRegressor  # noqa: E402
from surrogates.models.gp import GPRegressor  # noqa: E402

TFNAS = os.path.join(ROOT, "..", "shared", "data", "tfnas_mbconv_latency.csv")
PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
DEVICES = ("xeon_gold6130_bs1_1thread_pytorch1.1", "titan_rtx_bs32_pytorch1.1")


def _fit(model, X, y, pool):
    t0 = time.perf_counter()
    if pool is not None:
        with cm.members_with(pool.map):
            model.fit(X, y)
    else:
        model.fit(X, y)
    return time.perf_counter() - t0


def _make(kind, seed):
    base = GPRegressor(random_state=seed) if kind == "gp" else GBTRegressor(random_state=seed)
    return CommitteeRegressor(base, random_state=seed)


def run_campaigns(seeds):
    import logging

    from acquisition.campaign import CampaignSpec
    from acquisition.engine import run_campaign
    from acquisition.store import Store
    from studies.replay import ReplayOracle

    logging.disable(logging.WARNING)
    table = ReplaySource(csv=TFNAS, params=PARAMS, where=[f"device={DEVICES[0]}"]).table()
    rows, ratios = [], []
    print("| seed | fit workers | samples | state | engine s | device idle | process wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            got = {}
            for workers in ((0, 2) if seed % 2 == 0 else (2, 0)):
                spec = CampaignSpec(name="r", family=table.family.name, seed=seed, target_spearman=0.98,
                                    budget_samples=800)
                t0 = time.perf_counter()
                with Store(os.path.join(tmp, f"{seed}-{workers}.sqlite")) as store:
                    res = run_campaign(store, spec, ReplayOracle(table), table.family, fit_workers=workers)
                    # the decisions: the rows each iteration chose on (what was in flight at the stop, also
                    # counted in n_train, depends on the engine's real seconds on the virtual clock)
                    decided = tuple(it["n_train"] for it in store.iterations("r"))
                got[workers] = ((decided, res.state), res.n_train, res.engine_s, res.device.idle_share,
                                time.perf_counter() - t0)
            for workers in (0, 2):
                (_, state), n, eng, idle, wall = got[workers]
                print(f"| {seed} | {workers} | {n} | {state} | {eng:.1f} | {100 * idle:.1f} % | {wall:.1f} |",
                      flush=True)
            rows.append(got)
            ratios.append(got[2][2] / got[0][2])
    same = sum(g[0][0] == g[2][0] for g in rows)
    print(f"\nthe same iterations and end: {same} of {len(rows)} seeds; engine s with 2 workers / without: median "
          f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}); device idle median "
          f"{100 * statistics.median(g[0][3] for g in rows):.1f} % without, "
          f"{100 * statistics.median(g[2][3] for g in rows):.1f} % with")


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=int, metavar="SEEDS", help="campaigns with and without fold workers instead")
    args = ap.parse_args()
    if args.run is not None:
        if args.run < 1:
            ap.error(f"--run {args.run}: expected a number of seeds >= 1")
        return run_campaigns(args.run)
    pool = FitPool(2).__enter__()
    pool.map(statistics.median, [([1.0],)] * 2)  # started, imports done
    print("| table | model | rows | here s | fold models in 2 workers s | ratio (range) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dev in DEVICES:
        t = ReplaySource(csv=TFNAS, params=PARAMS, where=[f"device={dev}"]).table()
        X, y = FeatureEncoder(t.family).transform(t.configs), t.latency_ms
        with threadpool_limits(1):
            for kind in ("gp", "gbt"):
                for n in (60, 120, 180):
                    here, there = [], []
                    for s in range(8):
                        idx = np.random.default_rng(s).permutation(len(y))[:n]
                        ways = (None, pool) if s % 2 == 0 else (pool, None)  # alternating order
                        times = {w is None: _fit(_make(kind, s), X[idx], y[idx], w) for w in ways}
                        here.append(times[True])
                        there.append(times[False])
                    r = [b / a for a, b in zip(here, there, strict=True)]
                    print(f"| {dev.split('_')[0]} | {kind} | {n} | {statistics.median(here):.2f} | "
                          f"{statistics.median(there):.2f} | {statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f}) |",
                          flush=True)
    pool.close()


if __name__ == "__main__":
    main()
