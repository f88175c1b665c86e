"""The epistemic part of the predictive std: what the model does not know, kept apart from noise."""

from __future__ import annotations

import numpy as np
import pytest

from surrogates import get_model
from surrogates.models import CommitteeRegressor, GBTRegressor, LogLatencyDist

NATIVE = {"linear": {}, "rf": {"n_estimators": 60}, "ngboost-ensemble": {"n_members": 3, "n_estimators": 60}}
NONE = {"gbt": {"max_iter": 50}, "quantile-gbt": {"max_iter": 50}, "ngboost": {"n_estimators": 50}}


def _data(n: int = 200, seed: int = 0, noise: float = 0.05):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 3))
    y = np.exp(1.5 * X[:, 0] + np.sin(4 * X[:, 1]) + 0.3 * X[:, 2]) * rng.lognormal(0, noise, n)
    return X, y


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NATIVE))
def test_models_with_a_committee_report_an_epistemic_part_within_the_std(name: str) -> None:
    X, y = _data()
    m = get_model(name, **NATIVE[name])
    if "random_state" in m.get_params():
        m.set_params(random_state=0)
    d = m.fit(X, y).predict_dist(X[:50])
    assert m.has_epistemic
    assert d.epistemic is not None and d.epistemic.shape == (50,)
    assert np.all(d.epistemic >= 0) and np.all(d.epistemic <= d.std + 1e-12)
    assert np.allclose(d.noise**2 + d.epistemic**2, d.std**2)


@pytest.mark.parametrize("name", sorted(NONE))
def test_models_without_a_committee_say_so(name: str) -> None:
    X, y = _data(80)
    m = get_model(name, **NONE[name]).fit(X, y)
    assert not m.has_epistemic
    d = m.predict_dist(X[:5])
    assert d.epistemic is None and np.array_equal(d.noise, d.std)


def test_committee_disagrees_more_far_from_the_data_than_inside_it() -> None:
    X, y = _data(300)
    inside = X[:, 0] < 0.5  # train on one half of the first feature only
    m = CommitteeRegressor(GBTRegressor(max_iter=100), n_folds=5, random_state=0).fit(X[inside], y[inside])
    rng = np.random.default_rng(1)
    near = rng.uniform(0, 1, (200, 3)) * [0.5, 1, 1]
    far = near + np.array([0.5, 0, 0])
    # extrapolating trees agree with each other (flat), so compare on a law that varies *inside* the data: the
    # sparse data of a small training set give larger disagreement than the dense data of a large one
    small = CommitteeRegressor(GBTRegressor(max_iter=100), n_folds=5, random_state=0).fit(X[:40], y[:40])
    assert np.median(small.predict_dist(near).epistemic) > np.median(m.predict_dist(near).epistemic)
    assert m.predict_dist(far).epistemic.shape == (200,)


def test_committee_out_of_fold_predictions_are_honest() -> None:
    X, y = _data(300, noise=0.1)
    m = CommitteeRegressor(GBTRegressor(max_iter=100), n_folds=5, random_state=0).fit(X, y)
    oof_err = np.mean((np.log(m.oof_latency_) - np.log(y)) ** 2)
    in_err = np.mean((np.log(m.predict(X)) - np.log(y)) ** 2)
    assert oof_err > in_err  # held-out rows are predicted worse than rows the model saw
    assert 0.5 * 0.1**2 < oof_err < 4 * 0.1**2 + 0.05  # and about as well as the noise allows
    # the calibrated 80 % interval holds about 80 % of the out-of-fold residuals
    d = m.predict_dist(X)
    r = np.abs(np.log(y) - m.oof_log_)
    held = np.mean(r <= 1.2816 * np.sqrt(m._epistemic_std(X) ** 2 + m.noise_std_**2) * m.std_scale_)
    assert 0.75 <= held <= 0.85
    assert d.std.shape == (300,)


def test_committee_rejects_a_foreign_estimator() -> None:
    from sklearn.linear_model import LinearRegression

    X, y = _data(40)
    with pytest.raises(ValueError, match="estimator=LinearRegression"):
        CommitteeRegressor(LinearRegression()).fit(X, y)


def test_dist_noise_without_epistemic_is_the_std() -> None:
    d = LogLatencyDist(np.zeros(3), np.full(3, 0.2), epistemic=np.array([0.0, 0.1, 0.2]))
    assert np.allclose(d.noise, [0.2, np.sqrt(0.03), 0.0])


def test_committee_fold_models_boost_fold_iter_rounds_at_the_same_total_shrinkage() -> None:
    X, y = _data(120)
    m = CommitteeRegressor(GBTRegressor(max_iter=60, learning_rate=0.1, fold_iter=20), n_folds=3,
                           random_state=0).fit(X, y)
    assert m.model_.n_iter_ == 60  # the point prediction: every round
    assert [f.n_iter_ for f in m.members_] == [20, 20, 20]
    assert all(f.model_.learning_rate == pytest.approx(0.3) for f in m.members_)
    same = CommitteeRegressor(GBTRegressor(max_iter=60, fold_iter=None), n_folds=3, random_state=0).fit(X, y)
    assert [f.n_iter_ for f in same.members_] == [60, 60, 60]
    assert GBTRegressor(max_iter=60, fold_iter=20, random_state=0).fit(X, y).n_iter_ == 60  # alone: all rounds
    with pytest.raises(ValueError, match="fold_iter"):
        GBTRegressor(fold_iter=0).fit(X, y)
