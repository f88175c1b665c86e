from __future__ import annotations

import os

import numpy as np
import pytest

from acquisition.store import Store
from nas.compare import compare_searches, hnq, top_scores
from nas.latency import NetworkLatencyModel
from nas.network import Network, NetworkError
from nas.search import BALS_FLOOR, bals, pareto_mask, plot_search, run_search
from tests.nas.conftest import NetworkProfiler, network_ms


class FakeAccuracy:
    """Deterministic stand-in for training: wider, deeper networks score higher (counts its calls)."""

    id = "fake-accuracy-v1"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, net: Network) -> float:
        self.calls += 1
        width = np.mean([b.config["cout"] for b in net.blocks])
        return float(min(0.99, 0.5 + 0.03 * len(net.blocks) + width / 1000))


@pytest.fixture(scope="module")
def model(bundle_dir: str) -> NetworkLatencyModel:
    return NetworkLatencyModel.load([os.path.join(bundle_dir, "resv1.bundle")])


def test_bals_rises_with_accuracy_and_falls_with_latency() -> None:
    assert bals(0.9, 5.0, tau_ref_ms=50.0) > bals(0.8, 5.0, tau_ref_ms=50.0)
    assert bals(0.9, 5.0, tau_ref_ms=50.0) > bals(0.9, 25.0, tau_ref_ms=50.0)
    assert bals(0.9, 60.0, tau_ref_ms=50.0) == BALS_FLOOR
    with pytest.raises(NetworkError, match=r"tau_ref_ms=0\.5"):
        bals(0.9, 1.0, tau_ref_ms=0.5)


def test_pareto_mask() -> None:
    acc = [0.9, 0.8, 0.95, 0.85]
    lat = [2.0, 1.0, 5.0, 3.0]  # the last is beaten by the first on both
    assert pareto_mask(acc, lat).tolist() == [True, True, True, False]


@pytest.mark.slow
def test_surrogate_search_resumes_and_plots(model, tmp_path) -> None:
    ev = FakeAccuracy()
    storage = str(tmp_path / "s.sqlite")
    r = run_search("stacked-resv1", trials=6, model=model, evaluator=ev, storage=storage, progress=False)
    assert len(r.accuracy) == 6 and r.tau_ref_ms > 0 and r.feasible.all() and r.source == "surrogate"
    np.testing.assert_allclose(r.latency_ms, model.predict(r.networks))
    first = ev.calls
    r2 = run_search("stacked-resv1", trials=9, model=model, evaluator=ev, storage=storage, progress=False)
    assert len(r2.accuracy) == 9 and r2.networks[:6] == r.networks  # resumed: the first 6 trials kept
    assert ev.calls - first <= 3  # only the new trials were evaluated (a repeat network hits the cache)
    d = r2.as_dict()
    assert d["best"]["bals"] == pytest.approx(float(np.max(r2.scores)))
    assert plot_search([r2], tmp_path / "p.png").endswith("p.png") and (tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(NetworkError, match="is another search"):
        run_search("stacked-resv1", trials=2, model=model, evaluator=ev, storage=storage, objective="pareto",
                   study_name=r.study_name, progress=False)


def test_pareto_objective_and_budget_constraint(model, tmp_path) -> None:
    r = run_search("stacked-resv1", trials=8, objective="pareto", model=model, evaluator=FakeAccuracy(),
                   storage=str(tmp_path / "p.sqlite"), budget_ms=1e-3, tau_ref_ms=50.0, progress=False)
    assert len(r.accuracy) == 8 and not r.feasible.any()  # nothing can be faster than a microsecond
    assert r.pareto.sum() == 0 and r.best() is None and r.as_dict()["best"] is None
    with pytest.raises(NetworkError, match="objective 'nope'"):
        run_search("stacked-resv1", objective="nope", model=model)
    with pytest.raises(NetworkError, match="latency source 'hil' needs a device"):
        run_search("stacked-resv1", source="hil", model=model)


@pytest.mark.slow
def test_hil_search_measures_and_compare_reports_hnq(model, tmp_path) -> None:
    prof = NetworkProfiler()
    with Store(str(tmp_path / "m.sqlite")) as store:
        res = compare_searches("stacked-resv1", model=model, store=store, profiler=prof, trials=12,
                               storage=str(tmp_path / "c.sqlite"), evaluator=FakeAccuracy(), seed=3,
                               progress=False)
        n_net = len(list(store.measurements(family="network")))
    np.testing.assert_allclose(res.hil.latency_ms, [network_ms(n) for n in res.hil.networks], rtol=1e-9)
    np.testing.assert_allclose(res.surrogate_measured_ms, [network_ms(n) for n in res.surrogate.networks],
                               rtol=1e-9)
    # networks both searches tried are stored once
    assert n_net == len({n.key for n in res.hil.networks + res.surrogate.networks})
    d = res.as_dict()
    assert d["w_overall"] >= 0 and d["w_optimal"] >= 0 and d["top10"]["w_optimal"] >= 0
    if d["w_overall"] > 0:  # the two searches share TPE's seeded start-up trials, so they may not differ at all
        assert d["hnq"] == pytest.approx(d["w_optimal"] / d["w_overall"])
    else:
        assert d["hnq"] == float("inf")


def test_hnq_is_the_ratio_of_wasserstein_distances() -> None:
    from scipy.stats import wasserstein_distance

    a, b = np.array([0.1, 0.2, 0.3]), np.array([0.15, 0.25, 0.5])
    h = hnq(a, b, a[2:], b[1:2])
    assert h["w_overall"] == pytest.approx(wasserstein_distance(a, b))
    assert h["hnq"] == pytest.approx(abs(0.3 - 0.25) / wasserstein_distance(a, b))


def test_top_scores_are_the_best_tenth_at_least_three() -> None:
    s = np.arange(50, dtype=float)
    assert top_scores(s).tolist() == [49.0, 48.0, 47.0, 46.0, 45.0]
    assert top_scores(np.array([0.2, 0.9, 0.1, 0.5])).tolist() == [0.9, 0.5, 0.2]
