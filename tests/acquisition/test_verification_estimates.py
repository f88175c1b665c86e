"""The estimates the stop rule reads (acquisition.verification): bounds that widen as rows get few and are
undefined below MIN_EVIDENCE, cover the truth about as often as they claim on a Gaussian copula, and the
prequential evidence read from stored asks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acquisition.verification import (
    MIN_EVIDENCE,
    Evidence,
    accuracy_lower,
    estimate,
    mape_upper,
    paired_gain_lower,
    prequential_evidence,
    score,
    spearman_lower,
    spearman_upper,
)


def test_spearman_bounds_widen_with_fewer_rows_and_vanish_below_the_minimum() -> None:
    lows = [spearman_lower(0.99, n) for n in (15, 30, 100, 1000)]
    assert lows == sorted(lows) and all(lo < 0.99 for lo in lows)
    assert all(spearman_upper(0.99, n) > 0.99 for n in (15, 100))
    assert math.isnan(spearman_lower(0.99, MIN_EVIDENCE - 1)) and math.isnan(spearman_lower(float("nan"), 50))
    assert spearman_lower(1.0, 40) < 1.0, "a perfect sample ranking is not proof of a perfect model"


def test_the_lower_bound_misses_the_truth_rarely_on_a_gaussian_copula() -> None:
    rng = np.random.default_rng(0)
    rho_s = 0.98
    r = 2 * np.sin(rho_s * np.pi / 6)  # Pearson of the normal pair whose Spearman is rho_s
    for n in (20, 60):
        above = 0
        for _ in range(400):
            x = rng.standard_normal(n)
            y = r * x + math.sqrt(1 - r * r) * rng.standard_normal(n)
            above += spearman_lower(float(score(np.exp(x), np.exp(y))["spearman"]), n) >= rho_s
        assert above / 400 <= 0.06, f"n={n}: the 95 % bound exceeded the truth in {above / 4:.1f} % of samples"


def test_accuracy_and_mape_bounds() -> None:
    assert accuracy_lower(50, 50) < 1.0 and accuracy_lower(45, 50) < 0.9 < accuracy_lower(49, 50) + 0.1
    assert math.isnan(accuracy_lower(5, 5))
    e = np.full(40, 5.0)
    assert mape_upper(e) == pytest.approx(5.0) and mape_upper(np.r_[e, 50.0]) > 6.0
    assert math.isnan(mape_upper(e[:3]))


def test_score_and_estimate() -> None:
    y = np.exp(np.linspace(0, 3, 40))
    m = score(y, y * 1.05)
    assert m["spearman"] == 1.0 and m["acc10"] == 1.0 and m["mape"] == pytest.approx(5.0) and m["n_verify"] == 40
    assert m["spearman_lo"] < 1.0 and m["acc10_lo"] < 1.0 and m["mape_hi"] == pytest.approx(5.0)
    assert math.isnan(score(y[:2], y[:2])["spearman"])
    ev = Evidence(np.log(y), np.log(y) + 0.01, np.r_[np.full(20, 10), np.full(20, 60)])
    assert estimate(ev, n_now=100)["n_verify"] == 20 and estimate(ev, n_now=100, window=0.0)["n_verify"] == 40
    with pytest.raises(ValueError, match="differ in length"):
        Evidence(np.zeros(3), np.zeros(2), np.zeros(3))


def test_prequential_evidence_keeps_random_predicted_measured_rows_once() -> None:
    asks = [{"key": "a", "drawn": "random", "pred_log": 0.1, "pred_n": 20, "batch": "0"},
            {"key": "a", "drawn": "random", "pred_log": 0.2, "pred_n": 20, "batch": "0"},  # another protocol
            {"key": "b", "drawn": "strategy", "pred_log": 0.3, "pred_n": 20, "batch": "0"},
            {"key": "c", "drawn": "initial", "pred_log": None, "pred_n": None, "batch": "initial"},
            {"key": "d", "drawn": "random", "pred_log": 0.5, "pred_n": 40, "batch": "1"},
            {"key": "e", "drawn": "random", "pred_log": 0.6, "pred_n": 40, "batch": "1"}]  # not measured (yet)
    ev = prequential_evidence(asks, {"a": 1.0, "b": 2.0, "c": 3.0, "d": math.e})
    assert len(ev) == 2 and list(ev.pred_log) == [0.1, 0.5] and list(ev.y_log) == [0.0, 1.0]
    assert list(ev.pred_n) == [20, 40] and list(ev.batch) == [0, 1]


def test_the_paired_gain_bound_says_better_only_when_it_is() -> None:
    """Predictions that rank clearly better get a positive lower bound; two predictors of the same quality get
    a positive bound in about 5 % of draws (the level), not more; below MIN_EVIDENCE rows it is undefined."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=120)
    assert paired_gain_lower(y, y + rng.normal(0, 0.2, 120), y + rng.normal(0, 0.6, 120)) > 0.02
    same = [paired_gain_lower(y, y + r.normal(0, 0.4, 120), y + r.normal(0, 0.4, 120), n_resamples=199)
            for r in (np.random.default_rng(s) for s in range(40))]
    assert sum(g > 0 for g in same) <= 6  # 2 expected at the 95 % level; more than 6 has odds of 0.3 %
    assert math.isnan(paired_gain_lower(y[: MIN_EVIDENCE - 1], y[: MIN_EVIDENCE - 1], y[: MIN_EVIDENCE - 1]))
    assert paired_gain_lower(y, y, y) == pytest.approx(0.0)
