"""Test-session settings: one BLAS/OpenMP/torch thread per test process.

The suite runs one process per core (``-n auto``, pyproject.toml); a process that also spawned a thread per
core would oversubscribe the machine (scikit-learn's histogram boosting ran up to 20x slower with 2 processes x 2
OpenMP threads on 2 cores). The engine itself fits on one thread for the same reason (acquisition/engine.py).
Profiler worker processes set their own threads (``Device.threads``) and are not affected.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def pytest_configure(config) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    config._thread_limits = threadpool_limits(limits=1)  # kept alive for the session


import tests.quick_models  # noqa: E402,F401 - registers the tests' light model, gbt-quick
