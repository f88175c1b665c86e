"""How many measured networks the overhead calibration needs, and how much it helps (issue 13).

Reads the networks `benchmarks/nas_bench.sh` measured (no profiling: the same seeded samples are looked up in
its database) and, for k = 0, 3, 5, 10, 20, 40 calibration networks drawn at random (20 draws each), scores the
calibrated prediction on the networks not used: median ±10 % accuracy, MAPE and 80 %-interval coverage.

Usage: python benchmarks/nas_calibration.py [OUT]   (default benchmarks/out/nas)
"""

import os
import sys

import numpy as np

from acquisition.store import Store
from nas import NETWORK, get_space
from nas.latency import NetworkLatencyModel
from surrogates.metrics import accuracy_within, mape

SPACES = {"stacked-mbconv": "mbconv", "stacked-resv1": "resv1", "stacked-resv2": "resv2", "mbv2": "mbconv"}


def main(out: str) -> None:
    with Store(os.path.join(out, "nas.sqlite"), readonly=True) as store:
        plat = store.platforms()[0]["id"]
        for space, fam in SPACES.items():
            nets = get_space(space).sample(220, seed=0)
            rows = store.find(plat, NETWORK.name, "adaptive-v1", [n.key for n in nets])
            keep = [i for i, n in enumerate(nets) if n.key in rows and rows[n.key]["status"] == "ok"]
            nets = [nets[i] for i in keep]
            y = np.asarray([rows[n.key]["min_ms"] for n in nets])
            model = NetworkLatencyModel.load([os.path.join(out, f"{fam}.bundle")])
            raw = model.predict(nets)
            print(f"{space} ({len(nets)} networks): raw Σ ±10 % {100 * accuracy_within(y, raw):.0f} %, "
                  f"MAPE {mape(y, raw):.1f} %")
            for k in (3, 5, 10, 20, 40):
                acc, err, cov = [], [], []
                for draw in range(20):
                    perm = np.random.default_rng(draw).permutation(len(nets))
                    cal, ev = perm[:k], perm[k:]
                    model.calibrate([nets[i] for i in cal], y[cal])
                    d = model.predict_dist([nets[i] for i in ev])
                    lo, hi = d.interval(0.8)
                    acc.append(accuracy_within(y[ev], d.median_ms))
                    err.append(mape(y[ev], d.median_ms))
                    cov.append(np.mean((y[ev] >= lo) & (y[ev] <= hi)))
                print(f"  k={k:>2}: ±10 % {100 * np.median(acc):.0f} % (draws {100 * np.min(acc):.0f}-"
                      f"{100 * np.max(acc):.0f} %), MAPE {np.median(err):.1f} %, 80 % coverage "
                      f"{100 * np.median(cov):.0f} %")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/nas")
