"""Fits in worker processes (acquisition.loop.fitpool): a campaign whose fits (or whose committees' fold models)
are sent to workers decides exactly what it decides fitting in its own process; a worker that fails, dies or hangs
costs a refit in the coordinator, never a result. No Ray here: the fleet's use of it is in
tests/acquisition/test_fleet.py."""

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


def campaign(path: Path, pool: FitPool | None, members: FitPool | None = None) -> tuple[list[str], list[dict]]:
    """One campaign to its budget, step by step as the fleet drives it: with ``pool``, every fit is sent to a
    worker first and the step waits for it; with ``members``, its committees' fold models are fitted there.
    Returns the keys asked and the iterations."""
    prof, s = SyntheticProfiler(), spec()
    with Store(path) as store:
        store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
        store.create_campaign(s.name, s.family, prof.platform_id, s.as_dict(), protocol=prof.protocol.id)
        loop = CampaignLoop(store, s, prof, FAM)
        loop.models.member_pool = members
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


# -- a single campaign: its committee's fold models in the workers (FitPool.map) -------------------------------


def _where(x: int, parent: int, fail: str = "") -> tuple[int, int]:
    """``(x², pid)``; in a worker process (not ``parent``), ``fail`` says how to fail there: raise, die or hang."""
    if os.getpid() != parent:
        if fail == "raise":
            raise RuntimeError("a worker's failure")
        if fail == "die":
            os._exit(3)
    return x * x, os.getpid()


def test_map_gives_every_result_in_order_from_the_workers() -> None:
    me = os.getpid()
    with FitPool(2, lazy=True) as pool:
        assert pool.executor is None  # lazy: nothing started yet
        out = pool.map(_where, [(i, me) for i in range(5)])
        assert [v for v, _ in out] == [i * i for i in range(5)]
        assert all(pid != me for _, pid in out) and pool.submitted == 5


@pytest.mark.parametrize("fail", ["raise", "die"])
def test_map_runs_a_failed_or_dead_workers_task_here_and_starts_again(fail: str, caplog) -> None:
    me = os.getpid()
    with FitPool(1) as pool:
        out = pool.map(_where, [(i, me, fail) for i in range(3)])
        assert [v for v, _ in out] == [0, 1, 4] and all(pid == me for _, pid in out)
        assert "fitting in the coordinator" in caplog.text
        again = pool.map(_where, [(i, me) for i in range(3)])  # a dead worker broke the pool: started again
        assert [v for v, _ in again] == [0, 1, 4] and all(pid != me for _, pid in again)


def test_map_gives_up_on_a_hung_worker_and_computes_here(caplog) -> None:
    me = os.getpid()
    with FitPool(1) as pool:
        pool.map(_where, [(1, me)])  # the worker is up (its start and imports take longer than the hang below)
        pool.hang_s = 1.0
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)
        out = pool.map(_where, [(i, me) for i in range(3)])
        assert [v for v, _ in out] == [0, 1, 4] and all(p == me for _, p in out) and pool.given_up == 1
        assert "not back after" in caplog.text
        pool.hang_s = 120.0
        again = pool.map(_where, [(2, me)])  # fresh workers
        assert again[0][0] == 4 and again[0][1] not in (me, pid)


def test_a_committee_whose_fold_models_are_fitted_in_workers_is_the_same() -> None:
    from surrogates.models import CommitteeRegressor
    from surrogates.models.committee import members_with
    from surrogates.models.gp import GPRegressor

    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, (60, 3))
    y = np.exp(X[:, 0] - 0.5 * X[:, 1]) * rng.lognormal(0, 0.05, 60)
    here = CommitteeRegressor(GPRegressor(random_state=0), n_folds=4, random_state=0).fit(X, y)
    with FitPool(2) as pool, members_with(pool.map):
        there = CommitteeRegressor(GPRegressor(random_state=0), n_folds=4, random_state=0).fit(X, y)
        assert pool.submitted == 4
    assert np.allclose(here.oof_log_, there.oof_log_, rtol=1e-9, atol=1e-12)
    d1, d2 = here.predict_dist(X[:5]), there.predict_dist(X[:5])
    assert np.allclose(d1.mean, d2.mean) and np.allclose(d1.std, d2.std)


def test_a_campaign_whose_fold_models_are_fitted_in_workers_decides_as_one_fitted_here(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    import acquisition.loop.models as models

    keys, its = campaign(tmp_path / "here.sqlite", None)
    monkeypatch.setattr(models, "MEMBER_POOL_ROWS", 0)  # every fit's committees, not only from 100 rows
    with FitPool(2, lazy=True) as pool:
        keys_w, its_w = campaign(tmp_path / "members.sqlite", None, members=pool)
        sent = pool.submitted
    assert keys_w == keys and len(its_w) == len(its) >= 3
    for a, b in zip(its, its_w, strict=True):
        assert (a["n_train"], a["model"]) == (b["n_train"], b["model"])
        assert a["spearman"] == pytest.approx(b["spearman"], abs=1e-9)
    assert sent >= 3 * len(its)  # each fit's folds (3 a committee) went to the workers


def test_a_single_campaign_gets_one_worker_per_fold_up_to_the_cores() -> None:
    assert default_workers(1, 16, members=5) == 5 and default_workers(1, 2, members=5) == 2
    assert default_workers(1, 1, members=5) == 0 and default_workers(1, 16, members=0) == 0
    assert default_workers(3, 16, members=5) == 3  # several campaigns: one whole fit per worker


def test_a_single_campaign_on_a_cpu_platform_fits_its_fold_models_in_the_coordinator() -> None:
    from types import SimpleNamespace

    from acquisition.fleet_run import _members

    def runner(kind: str) -> SimpleNamespace:
        return SimpleNamespace(pool=SimpleNamespace(fingerprint={"kind": kind}),
                               loop=SimpleNamespace(spec=SimpleNamespace(folds=5)))

    assert _members([runner("replay")]) == 5 and _members([runner("cuda")]) == 5
    assert _members([runner("cpu")]) == 0  # its actors may measure on this machine's cores
    assert _members([runner("replay"), runner("cuda")]) == 0  # several: whole fits, one a worker


def test_run_with_fold_workers_decides_as_run_without(tmp_path: Path, monkeypatch) -> None:
    import acquisition.loop.models as models
    from acquisition.engine import run_campaign

    monkeypatch.setattr(models, "MEMBER_POOL_ROWS", 0)  # every fit's committees, not only from 100 rows
    mapped: list[int] = []
    plain_map = FitPool.map
    monkeypatch.setattr(FitPool, "map", lambda self, func, tasks: mapped.append(len(tasks)) or plain_map(self, func,
                                                                                                           tasks))
    out = {}
    for workers in (0, 2):
        with Store(tmp_path / f"run{workers}.sqlite") as store:
            res = run_campaign(store, spec(name="r", pipeline="on"), SyntheticProfiler(), FAM, fit_workers=workers)
            out[workers] = ([a["key"] for a in store.asks("r")], store.iterations("r"), res.n_train)
    (keys, its, n), (keys_w, its_w, n_w) = out[0], out[2]
    assert keys_w == keys and n_w == n == 50 and len(its_w) == len(its) >= 3
    for a, b in zip(its, its_w, strict=True):
        assert (a["n_train"], a["model"]) == (b["n_train"], b["model"])
        assert a["spearman"] == pytest.approx(b["spearman"], abs=1e-9)
    assert len(mapped) >= len(its) and set(mapped) == {3}  # each committee's 3 fold models, in the run with workers
