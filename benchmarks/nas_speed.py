"""Networks predicted per second by nas.NetworkLatencyModel (median of 3 runs over 10,000 fresh networks), on one
thread and on all of this machine's cores (scikit-learn's tree prediction is OpenMP-parallel).

Usage: python benchmarks/nas_speed.py BUNDLE [BUNDLE ...]
The networks are sampled before the clock starts; each run uses a new model (empty block cache) and new
networks, so no prediction is reused across runs.
"""

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nas import get_space
from nas.latency import NetworkLatencyModel


def main(paths: list[str]) -> None:
    base = NetworkLatencyModel.load(paths)
    cores = os.cpu_count() or 1
    for fam in base.families:
        space = get_space(f"stacked-{fam}")
        nets = [space.sample(10_000, seed=100 + run) for run in range(3)]
        for threads in sorted({1, cores}):
            rates = []
            for run in range(3):
                model = NetworkLatencyModel(base.predictors)
                with threadpool_limits(threads):
                    t0 = time.perf_counter()
                    model.predict_dist(nets[run])
                    dt = time.perf_counter() - t0
                rates.append(len(nets[run]) / dt)
            print(f"{space.name}: {np.median(rates):,.0f} networks/s predicted on {threads} thread(s) (median of "
                  f"3 runs of 10,000 fresh networks: {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main(sys.argv[1:])
