"""A committee's fit with its fold models in 2 worker processes (FitPool.map) against in this process.

The TF-NAS table's two devices, `gp` and `gbt` committees at 60, 120 and 180 rows, 8 random training sets each, the
two ways in alternating order on the same rows, one BLAS thread (as in the engine): medians and the paired ratio
(its range). What ``MEMBER_POOL_ROWS`` (acquisition.loop.models) was chosen by.

    python benchmarks/fold_workers_bench.py      # ~2 min, alone on the machine
"""

import os
import statistics
import sys
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


def main():
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
