"""Lean predictors (surrogates.lean): the same distribution as the model, from arrays, without scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from surrogates import get_model
from surrogates.lean import LeanModel, compile_model
from surrogates.models import CommitteeRegressor, GBTRegressor


def _data(n: int = 90, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 4))
    y = np.exp(1.5 * X[:, 0] + np.sin(4 * X[:, 1]) + 0.3 * X[:, 2]) * rng.lognormal(0, 0.05, n)
    noise = rng.uniform(0.01, 0.08, n)
    noise[::7] = np.nan  # some rows of unknown noise
    return X, y, noise


def _same(model, X) -> None:
    program, arrays = compile_model(model)
    lean = LeanModel(program, arrays)
    want, got = model.predict_dist(X), lean.predict_dist(X)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.std, want.std, rtol=1e-9, atol=1e-12)
    for part in ("epistemic", "aleatoric"):
        w, g = getattr(want, part), getattr(got, part)
        assert (w is None) == (g is None), part
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lean.predict(X), model.predict(X), rtol=1e-9)


@pytest.mark.parametrize("base", [GBTRegressor(max_iter=40, fold_iter=15), get_model("gp"), get_model("linear")],
                         ids=["gbt", "gp", "linear"])
@pytest.mark.parametrize("noisy", [False, True], ids=["no-noise", "measured-noise"])
def test_a_committee_predicts_the_same_from_arrays(base, noisy: bool) -> None:
    X, y, noise = _data()
    m = CommitteeRegressor(base, n_folds=3, random_state=0).fit(X, y, **({"sample_noise": noise} if noisy else {}))
    _same(m, np.vstack([X[:20], np.random.default_rng(5).uniform(-0.5, 1.5, (1500, 4))]))  # beyond the rows, >1 chunk


def test_a_plain_gbt_or_linear_and_too_few_rows_for_folds() -> None:
    X, y, noise = _data(60)
    _same(GBTRegressor(max_iter=30, random_state=0).fit(X, y, sample_noise=noise), X)
    _same(get_model("linear").fit(X, y), X)
    _same(get_model("linear").fit(X, y, sample_noise=noise), X)
    _same(CommitteeRegressor(GBTRegressor(max_iter=10), n_folds=5).fit(X[:3], y[:3]), X)  # no fold models


def test_models_without_a_lean_form_say_so() -> None:
    X, y, _ = _data(60)
    assert compile_model(get_model("quantile-gbt", max_iter=20).fit(X, y)) is None
    assert compile_model(CommitteeRegressor(get_model("rf", n_estimators=40)).fit(X, y)) is None


def test_bad_input_is_named() -> None:
    X, y, _ = _data(40)
    lean = LeanModel(*compile_model(GBTRegressor(max_iter=10).fit(X, y)))
    with pytest.raises(ValueError, match="expects 4 features"):
        lean.predict_dist(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        lean.predict_dist(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="version"):
        LeanModel({**lean.program, "version": 99}, lean.arrays)


def test_evaluating_imports_no_scikit_learn() -> None:
    code = ("import sys, numpy as np; from surrogates.lean import LeanModel; "
            "LeanModel({'version': 1, 'n_features': 1, 'kind': 'gbt', 'std': 0.1, 'std_scale': 1.0, 'noise': None, "
            "'mean': {'type': 'linear', 'at': 'm', 'intercept': 0.0}}, {'m.center': np.zeros(1), 'm.scale': "
            "np.ones(1), 'm.coef': np.ones(1)}).predict_dist(np.ones((2, 1))); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'skops')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
