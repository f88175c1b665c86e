"""Fits in worker processes (acquisition.loop.fitpool): a campaign whose fits are sent to a worker decides exactly
what it decides fitting in its own process; a worker that fails, dies or hangs costs a refit in the coordinator,
never a result. No Ray here: the fleet's use of it is in tests/acquisition/test_fleet.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from acquisition.campaign import CampaignSpec
from acquisition.engine import CampaignLoop
from acquisition.loop.fitpool import FitPool, default_workers
from acquisition.loop.models import FitJob, run_fit
from acquisition.store import Store
from profiler.families import get_family
from tests.acquisition.synthetic_profiler import SyntheticProfiler

FAM = get_family("mbconv")


def spec(**kw) -> CampaignSpec:
    base = {"name": "w", "family": "mbconv", "model": "auto", "target_spearman": 0.9999, "budget_samples": 50,
            "batch_size": 10, "initial_size": 10, "pool_size": 100, "folds": 3, "fidelity": "full"}
    return CampaignSpec(**{**base, **kw}).validate()


def campaign(path: Path, pool: FitPool | None) -> tuple[list[str], list[dict]]:
    """One campaign to its budget, step by step as the fleet drives it: with ``pool``, every fit is sent to a
    worker first and the step waits for it. Returns the keys asked and the iterations."""
    prof, s = SyntheticProfiler(), spec()
    with Store(path) as store:
        store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
        store.create_campaign(s.name, s.family, prof.platform_id, s.as_dict(), protocol=prof.protocol.id)
        loop = CampaignLoop(store, s, prof, FAM)
        while True:
            while pool is not None and not loop.prefetch(pool):
                pool.wait([loop.models.ahead[1]], 0.05)
            asks = loop.next_asks()
            loop.ahead_data = None
            if not asks:
                break
            loop.measure(prof, asks)
        return [a["key"] for a in store.asks(s.name)], store.iterations(s.name)


def test_a_campaign_fitted_in_a_worker_decides_as_one_fitted_here(tmp_path: Path) -> None:
    keys, its = campaign(tmp_path / "here.sqlite", None)
    with FitPool(1) as pool:
        keys_w, its_w = campaign(tmp_path / "worker.sqlite", pool)
        sent = pool.submitted
    assert keys_w == keys and len(its_w) == len(its) >= 3
    for a, b in zip(its, its_w, strict=True):  # the same models, fitted on the same rows, judged alike
        assert (a["n_train"], a["model"]) == (b["n_train"], b["model"])
        assert a["spearman"] == pytest.approx(b["spearman"], abs=1e-12)
    assert sent == len(its)  # every fit went to the worker, once


def _job(n: int = 40) -> FitJob:
    X = np.random.default_rng(0).uniform(1, 3, (n, 2))
    return FitJob(CampaignSpec(name="c", family="f", model="linear"), None, None, None, X, np.exp(X[:, 0] - X[:, 1]),
                  {}, ("random",) * n)


def _take(pool: FitPool, ticket) -> object:
    deadline = time.monotonic() + 120
    while not pool.ready(ticket):
        assert time.monotonic() < deadline, "the pool never said the fit was ready or given up on"
        pool.wait([ticket], 0.05)
    return ticket.outcome()


def test_a_hung_worker_is_given_up_on_and_the_pool_starts_again(caplog) -> None:
    job = _job()
    with FitPool(1) as pool:
        assert _take(pool, pool.submit(job)) is not None  # the worker is up
        pool.hang_s = 1.0
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)  # hung mid-work, as far as the pool can tell
        ticket = pool.submit(job)
        assert _take(pool, ticket) is None and pool.given_up == 1
        assert "not back after" in caplog.text
        pool.hang_s = 120.0
        out = _take(pool, pool.submit(job))  # fresh workers
        assert out is not None and pid not in pool.worker_pids()
        here = run_fit(job)
        assert np.allclose(out.model.predict(job.X), here.model.predict(job.X))


def test_a_failed_fit_in_a_worker_is_none_and_logged(caplog) -> None:
    bad = _job()
    bad.y = bad.y[:-1]  # one label short: the model's fit raises in the worker
    with FitPool(1) as pool:
        assert _take(pool, pool.submit(bad)) is None
    assert "failed" in caplog.text


def test_workers_one_per_campaign_up_to_the_cores_and_bad_values_refused() -> None:
    assert default_workers(1, 16) == 0 and default_workers(4, 16) == 4 and default_workers(4, 2) == 2
    with pytest.raises(ValueError, match="workers=0"):
        FitPool(0)
    with pytest.raises(ValueError, match="hang_s=-1"):
        FitPool(1, hang_s=-1)
