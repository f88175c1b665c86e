"""Metrics against scipy/numpy references and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from surrogates import LogLatencyDist, evaluate, spearman, spearman_ci
from surrogates.metrics import accuracy_within, coverage, gaussian_nll, kendall, mape, pearson, rmse

rng = np.random.default_rng(0)
Y = rng.lognormal(0, 1, 300)
P = Y * rng.lognormal(0, 0.1, 300)


def test_rank_and_linear_correlations_match_scipy() -> None:
    assert spearman(Y, P) == pytest.approx(stats.spearmanr(Y, P).statistic)
    assert kendall(Y, P) == pytest.approx(stats.kendalltau(Y, P).statistic)
    assert pearson(Y, P) == pytest.approx(stats.pearsonr(Y, P).statistic)


def test_ties_are_handled() -> None:
    y = np.array([1.0, 1.0, 2.0, 3.0])
    p = np.array([1.0, 2.0, 2.0, 3.0])
    assert spearman(y, p) == pytest.approx(stats.spearmanr(y, p).statistic)
    assert kendall(y, p) == pytest.approx(stats.kendalltau(y, p, variant="b").statistic)


def test_constant_input_is_nan_not_an_error() -> None:
    assert np.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_error_metrics_by_hand() -> None:
    y = np.array([1.0, 2.0, 4.0, 10.0])
    p = np.array([1.04, 2.3, 4.0, 9.5])
    assert mape(y, p) == pytest.approx(100 * np.mean([0.04, 0.15, 0.0, 0.05]))
    assert rmse(y, p) == pytest.approx(np.sqrt(np.mean([0.04**2, 0.3**2, 0, 0.5**2])))
    assert accuracy_within(y, p, 0.05) == pytest.approx(0.75)
    assert accuracy_within(y, p, 0.10) == pytest.approx(0.75)
    assert accuracy_within(y, p, 0.20) == 1.0
    with pytest.raises(ValueError, match="tolerance"):
        accuracy_within(y, p, 0)
    with pytest.raises(ValueError, match="differ in length"):
        mape(y, p[:2])


def test_coverage_and_nll_of_a_calibrated_distribution() -> None:
    z = rng.normal(0, 1, 20000)
    dist = LogLatencyDist(mean=np.zeros_like(z), std=np.ones_like(z))
    y = np.exp(z)
    assert coverage(y, dist, 0.8) == pytest.approx(0.8, abs=0.01)
    assert gaussian_nll(y, dist) == pytest.approx(0.5 * np.log(2 * np.pi) + 0.5, abs=0.02)
    narrow = LogLatencyDist(mean=np.zeros_like(z), std=np.full_like(z, 0.2))
    assert gaussian_nll(y, narrow) > gaussian_nll(y, dist)


def test_native_quantiles_are_used_for_intervals() -> None:
    d = LogLatencyDist(mean=np.zeros(2), std=np.ones(2), quantiles={0.1: np.array([-1.0, -2.0]),
                                                                    0.9: np.array([1.0, 0.5])})
    lo, hi = d.interval(0.8)
    np.testing.assert_allclose(lo, np.exp([-1.0, -2.0]))
    np.testing.assert_allclose(hi, np.exp([1.0, 0.5]))
    lo95, _ = d.interval(0.95)  # not native: normal approximation
    assert lo95[0] == pytest.approx(np.exp(stats.norm.ppf(0.025)))


def test_spearman_ci_brackets_the_estimate() -> None:
    lo, hi = spearman_ci(Y, P, n_resamples=500)
    rho = spearman(Y, P)
    assert lo < rho < hi and hi - lo < 0.1
    lo, hi = spearman_ci(Y, Y, n_resamples=200)  # perfect ranks: a degenerate but finite interval
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


@pytest.mark.parametrize("ties", [False, True])
def test_resampled_spearman_is_spearmanr_of_each_resample(ties: bool) -> None:
    from surrogates.metrics import _resampled_spearman

    rng = np.random.default_rng(3)
    t = rng.lognormal(0, 1, 60)
    p = t * rng.lognormal(0, 0.3, 60)
    if ties:  # repeated latencies on both sides, as in a table of rounded milliseconds
        t, p = np.round(t, 1), np.round(p, 1)
    idx = rng.integers(0, 60, size=(2, 7, 60))
    got = _resampled_spearman(t, p)(idx)
    want = np.array([[stats.spearmanr(t[i], p[i]).statistic for i in row] for row in idx])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    jack = np.array([np.delete(np.arange(60), i) for i in range(60)])  # BCa's jackknife resamples
    np.testing.assert_allclose(_resampled_spearman(t, p)(jack),
                               [stats.spearmanr(t[j], p[j]).statistic for j in jack], rtol=1e-12, atol=1e-12)


def test_spearman_ci_agrees_with_scipy_bootstrap_of_spearmanr() -> None:
    rng = np.random.default_rng(4)
    t = rng.lognormal(0, 1, 200)
    p = t * rng.lognormal(0, 0.4, 200)
    lo, hi = spearman_ci(t, p, n_resamples=2000, seed=1)

    def rho(a, b):
        return stats.spearmanr(a, b).statistic

    ref = stats.bootstrap((t, p), rho, paired=True, vectorized=False, n_resamples=2000, method="bca",
                          random_state=1).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.01) and hi == pytest.approx(ref.high, abs=0.01)


def test_evaluate_with_and_without_distribution() -> None:
    m = evaluate(Y, P)
    assert set(m) >= {"spearman", "kendall", "pearson", "mape", "rmse", "acc5", "acc10"}
    assert "coverage80" not in m
    d = LogLatencyDist(mean=np.log(P), std=np.full(len(P), 0.1))
    m2 = evaluate(Y, d, ci=True)
    assert m2["spearman"] == pytest.approx(m["spearman"])
    assert 0.7 < m2["coverage80"] < 0.9  # noise std is 0.1: the 80 % interval holds ~80 %
    assert m2["spearman_lo"] < m2["spearman"] < m2["spearman_hi"]
