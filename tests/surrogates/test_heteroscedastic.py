"""Heteroscedastic surrogates: ``fit(X, y, sample_noise=...)`` learns the measured noise per input and weights
rows by it (surrogates/models/_base.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import surrogates.models._base as base
from surrogates import FeatureEncoder, export_bundle, load_bundle
from surrogates.models import (
    CommitteeRegressor,
    ExpLinearRegressor,
    ForestRegressor,
    GBTRegressor,
)
from surrogates.models._base import check_sample_noise, fit_noise_model, noise_weights
from surrogates.models.transfer import SourceModels, TransferRegressor
from tests.surrogates.synthetic import block_dataset
from tests.surrogates.test_models import FAST

SMALL = [*FAST, TransferRegressor(base="gbt", random_state=0)]  # every model, small


def _hetero(n: int = 400, seed: int = 0):
    """Two features; latency exp(x0 + x1); the noise is 1 % where x0 < 2 and 10 % where x0 >= 2."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(1, 3, (n, 2))
    sigma = np.where(X[:, 0] < 2, 0.01, 0.10)
    y = np.exp(X[:, 0] + X[:, 1] + rng.normal(0, 1, n) * sigma)
    # a row's noise as a measurement estimates it: the spread of three placements
    noise = (rng.normal(0, 1, (n, 3)) * sigma[:, None]).std(axis=1, ddof=1)
    return X, y, noise


@pytest.mark.parametrize("model", SMALL, ids=lambda m: type(m).__name__)
def test_every_model_takes_sample_noise_and_reports_the_measured_noise(model) -> None:
    X, y, noise = _hetero(200)
    noise[::7] = np.nan  # unknown for some rows
    model = clone(model)  # SMALL's instances are test_models' FAST: never fit them in place
    d = model.fit(X, y, sample_noise=noise).predict_dist(np.array([[1.5, 2.0], [2.5, 2.0]]))
    assert d.aleatoric is not None and np.all(d.noise <= d.std + 1e-12)
    assert np.all(np.isfinite(d.std)) and np.all(d.std > 0)
    if d.epistemic is not None:
        assert np.all(d.epistemic <= d.std + 1e-12)


def test_noise_is_learned_per_input() -> None:
    X, y, noise = _hetero(600)
    m = ForestRegressor(n_estimators=50, random_state=0).fit(X, y, sample_noise=noise)
    assert m.noise_model_ is not None
    quiet, loud = np.array([[1.3, 2.0], [1.6, 1.5]]), np.array([[2.5, 2.0], [2.8, 1.5]])
    nq, nl = m.predict_dist(quiet).noise, m.predict_dist(loud).noise
    assert np.all(nq < 0.03) and np.all(nl > 0.06)
    # std = sqrt(epistemic² + misfit² + noise²): the noisy region is the less certain one
    d = m.predict_dist(np.vstack([quiet, loud]))
    np.testing.assert_allclose(d.std**2, d.epistemic**2 + m.misfit_var_ + d.noise**2, rtol=1e-9)
    assert d.std[2:].min() > d.std[:2].max()


def test_model_without_epistemic_part_keeps_its_std(monkeypatch) -> None:
    monkeypatch.setattr(base, "WEIGHT_BY_NOISE", False)  # the same fit, with and without the noise
    X, y, noise = _hetero(300)
    plain = GBTRegressor(max_iter=30, random_state=0).fit(X, y).predict_dist(X[:20])
    noisy = GBTRegressor(max_iter=30, random_state=0).fit(X, y, sample_noise=noise).predict_dist(X[:20])
    np.testing.assert_array_equal(plain.std, noisy.std)
    np.testing.assert_array_equal(plain.noise, plain.std)  # without sample_noise: the residual std
    assert np.all(noisy.noise <= noisy.std) and not np.array_equal(noisy.noise, noisy.std)


def test_without_known_noise_the_model_is_the_plain_one() -> None:
    X, y, _ = _hetero(100)
    m = GBTRegressor(max_iter=20, random_state=0)
    a = m.fit(X, y).predict_dist(X)
    b = m.fit(X, y, sample_noise=np.full(len(y), np.nan)).predict_dist(X)
    assert m.noise_var_ is None and b.aleatoric is None
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)


@pytest.mark.parametrize("bad, match", [
    (np.full(5, 0.01), r"sample_noise must be one relative noise per row \(shape \(100,\)\), got shape \(5,\)"),
    (np.full((100, 1), 0.01), r"shape \(100, 1\)"),
    (np.r_[-0.1, np.full(99, 0.01)], r"sample_noise contains -0.1: expected a relative noise >= 0"),
    (np.r_[np.inf, np.full(99, 0.01)], r"sample_noise contains inf"),
    (["a"] * 100, r"sample_noise contains 'a': expected one relative noise per row"),
])
def test_bad_sample_noise_is_a_one_line_error(bad, match) -> None:
    X, y, _ = _hetero(100)
    with pytest.raises(ValueError, match=match) as exc:
        GBTRegressor(max_iter=5).fit(X, y, sample_noise=bad)
    assert "\n" not in str(exc.value)


def test_check_sample_noise_accepts_none_and_nan() -> None:
    assert check_sample_noise(None, 3) is None
    assert check_sample_noise([np.nan] * 3, 3) is None
    np.testing.assert_array_equal(check_sample_noise([0.0, np.nan, 0.2], 3), [0.0, np.nan, 0.2])


def test_noise_weights_floor_at_the_median_and_count_unknown_rows_as_the_median() -> None:
    w = noise_weights(np.array([0.001, 0.02, 0.02, 0.04, np.nan]))
    # floored at the median (0.02): the quiet row, the median rows and the unknown one weigh alike; 0.04: a quarter
    assert w is not None and w.mean() == pytest.approx(1.0)
    assert w[0] == pytest.approx(w[1]) == pytest.approx(w[4])
    assert w[3] == pytest.approx(w[1] / 4)
    assert noise_weights(np.array([0.0, 0.0, np.nan])) is None


def test_noise_model_is_a_constant_below_twenty_rows() -> None:
    X = np.random.default_rng(0).uniform(size=(10, 2))
    model, mean_var = fit_noise_model(X, np.full(10, 0.03))
    assert model is None and mean_var == pytest.approx(0.03**2)


@pytest.mark.parametrize("model", [ExpLinearRegressor(), CommitteeRegressor(ExpLinearRegressor(), n_folds=3),
                                   TransferRegressor(base="linear")], ids=["linear", "committee", "transfer"])
def test_a_row_known_to_be_noisy_pulls_the_fit_less(model) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (60, 2))
    y = np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])
    noise = np.full(60, 0.01)
    y[:3] *= 3.0  # three measurements gone wrong, and their placements said so
    noise[:3] = 0.5
    grid = rng.uniform(1, 3, (50, 2))
    truth = np.exp(0.5 * grid[:, 0] - 0.3 * grid[:, 1])
    err = {}
    for known in (False, True):
        m = model.fit(X, y, sample_noise=noise if known else None)
        err[known] = float(np.median(np.abs(m.predict(grid) / truth - 1)))
    assert err[True] < err[False] / 3


def test_transfer_model_forwards_the_weights_to_its_prior() -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, (120, 2))
    src = GBTRegressor(max_iter=50, random_state=0).fit(X, np.exp(X[:, 0] + X[:, 1]))
    y = 2.0 * np.exp(X[:, 0] + X[:, 1])
    noise = np.full(120, 0.01)
    y[:10] *= 4.0
    noise[:10] = 0.5
    plain = TransferRegressor(sources=SourceModels([src]), base="linear").fit(X, y)
    weighted = TransferRegressor(sources=SourceModels([src]), base="linear").fit(X, y, sample_noise=noise)
    # the ridge prior's intercept is the log scale between target and source (log 2) when the bad rows weigh less
    assert abs(weighted.intercept_ - np.log(2)) < abs(plain.intercept_ - np.log(2))


def test_bundle_round_trip_keeps_the_noise_model(tmp_path: Path) -> None:
    fam, cfgs, y = block_dataset("resv2", 80, seed=2)
    enc = FeatureEncoder(fam)
    X = enc.transform(cfgs)
    noise = np.random.default_rng(0).uniform(0.005, 0.05, len(y))
    model = CommitteeRegressor(GBTRegressor(max_iter=20), n_folds=3, random_state=0).fit(X, y, sample_noise=noise)
    export_bundle(tmp_path / "m.bundle", model, enc, model_name="gbt", platform={"id": "p1", "fingerprint": {}},
                  n_train=len(y), metrics={})
    a, b = model.predict_dist(X), load_bundle(tmp_path / "m.bundle", family="resv2").predict_dist(cfgs)
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_array_equal(a.noise, b.noise)
