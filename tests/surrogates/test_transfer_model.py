"""TransferRegressor: a prior from other platforms' models plus a correction (surrogates/models/transfer.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from surrogates import FeatureEncoder, export_bundle, load_bundle
from surrogates.metrics import spearman
from surrogates.models import CommitteeRegressor, GBTRegressor
from surrogates.models.transfer import SourceModels, TransferRegressor
from tests.surrogates.synthetic import block_dataset


@parametrize_with_checks([TransferRegressor(random_state=0), TransferRegressor(method="prior")])
def test_sklearn_estimator_checks(estimator, check) -> None:
    # Without sources it is its base model; every check runs.
    check(estimator)


@pytest.fixture(scope="module")
def platforms():
    """Features of 600 mbconv blocks, a source platform's latencies and a target that is slower and flatter
    (y_t = 3 y_s^0.85) with its own noise; the source model is fitted on all 600 source rows."""
    fam, cfgs, y_src = block_dataset("mbconv", 600, seed=4, noise=0.03)
    X = FeatureEncoder(fam).transform(cfgs)
    rng = np.random.default_rng(5)
    y_tgt = 3.0 * y_src**0.85 * rng.lognormal(0.0, 0.03, len(y_src))
    src = GBTRegressor(random_state=0).fit(X, y_src)
    return fam, X, y_src, y_tgt, src


def _err(y, p) -> float:
    return float(np.median(np.abs(p / y - 1)))


@pytest.mark.slow
def test_a_related_source_beats_the_plain_model_on_few_rows(platforms) -> None:
    _, X, _, y, src = platforms
    test = np.arange(200, 600)
    for n, gain in ((20, 0.5), (40, 0.75), (80, 0.5)):
        tr = np.arange(n)
        plain = GBTRegressor(random_state=0).fit(X[tr], y[tr])
        for method in ("feature", "residual"):
            t = TransferRegressor(sources=SourceModels([src]), method=method, random_state=0).fit(X[tr], y[tr])
            assert _err(y[test], t.predict(X[test])) < gain * _err(y[test], plain.predict(X[test]))
            assert spearman(y[test], t.predict(X[test])) > spearman(y[test], plain.predict(X[test]))
            assert t.source_weights_[0] > 0.5  # the prior leans on the source


@pytest.mark.slow
def test_a_shuffled_source_gets_little_weight_and_costs_little(platforms) -> None:
    _, X, y_src, y, _ = platforms
    bad = GBTRegressor(random_state=0).fit(X, np.random.default_rng(0).permutation(y_src))
    tr, test = np.arange(150), np.arange(200, 600)
    t = TransferRegressor(sources=SourceModels([bad]), random_state=0).fit(X[tr], y[tr])
    plain = GBTRegressor(random_state=0).fit(X[tr], y[tr])
    assert abs(t.source_weights_[0]) < 0.2
    assert spearman(y[test], t.predict(X[test])) > spearman(y[test], plain.predict(X[test])) - 0.01


def test_without_sources_it_is_the_base_model(platforms) -> None:
    _, X, _, y, _ = platforms
    t = TransferRegressor(base="gbt", random_state=0).fit(X[:100], y[:100])
    g = GBTRegressor(random_state=0).fit(X[:100], y[:100])
    assert np.allclose(t.predict(X[100:]), g.predict(X[100:]), rtol=1e-6)


def test_the_std_grows_where_the_target_leaves_its_source(platforms) -> None:
    """On stride-2 blocks the target runs an unpredictable 1.0-2.5x slower than its source suggests: the model
    cannot learn that from the features, and its std is larger there."""
    fam, X, y_src, _, src = platforms
    stride = X[:, FeatureEncoder(fam).feature_names.index("stride")]
    off = np.where(stride == stride.max(), np.exp(np.random.default_rng(0).normal(0.3, 0.3, len(y_src))), 1.0)
    y = 2.0 * y_src * off
    t = TransferRegressor(sources=SourceModels([src]), random_state=0).fit(X[:300], y[:300])
    d = t.predict_dist(X[300:])
    leaves = stride[300:] == stride.max()
    assert t.k_ > 0
    assert d.std[leaves].mean() > 1.2 * d.std[~leaves].mean()


def test_clones_and_committees_keep_the_source_models_fitted(platforms) -> None:
    _, X, _, y, src = platforms
    t = TransferRegressor(sources=SourceModels([src], ["other"]), random_state=0)
    assert clone(t).sources is t.sources
    c = CommitteeRegressor(t, n_folds=3, random_state=0).fit(X[:60], y[:60])
    assert c.oof_log_.shape == (60,) and all(m.n_sources_ == 1 for m in c.members_)


def test_a_transfer_model_travels_in_a_bundle(platforms, tmp_path) -> None:
    fam, X, _, y, src = platforms
    t = TransferRegressor(sources=SourceModels([src], ["store:abc"]), random_state=0).fit(X[:80], y[:80])
    path = os.path.join(tmp_path, "t.bundle")
    export_bundle(path, t, FeatureEncoder(fam), model_name="transfer:gbt", platform={"id": "new"}, n_train=80)
    cfgs = fam.space.sample(30, seed=9)
    pred = load_bundle(path, family="mbconv")
    assert np.allclose(pred.predict(cfgs), t.predict(FeatureEncoder(fam).transform(cfgs)))


@pytest.mark.parametrize(("params", "message"), [
    ({"method": "stack"}, "method='stack' is not allowed"),
    ({"alpha": -1.0}, "alpha=-1.0 is not allowed"),
    ({"base": "nope"}, "base='nope' is not allowed"),
    ({"sources": [1, 2]}, "sources=[1, 2] is not allowed"),
])
def test_bad_parameters_are_named(params, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TransferRegressor(**params).fit(np.ones((5, 2)), np.ones(5))


def test_the_prior_alone_ranks_as_its_source_and_cannot_overfit_a_few_rows(platforms) -> None:
    """One source, the prior alone: an increasing map of the source's prediction, so it ranks never-seen rows
    exactly as the source does, from any handful of rows; the std is the prior's own residual spread."""
    _, X, _, y_tgt, src = platforms
    rest = np.arange(100, len(y_tgt))
    src_rho = spearman(y_tgt[rest], src.predict(X[rest]))
    for n in (5, 10, 20):
        m = TransferRegressor(sources=SourceModels([src]), method="prior").fit(X[:n], y_tgt[:n])
        assert m.model_ is None and m.coef_[0] > 0
        assert spearman(y_tgt[rest], m.predict(X[rest])) == pytest.approx(src_rho, abs=1e-12)
        d = m.predict_dist(X[rest[:3]])
        assert np.all(d.std == d.std[0]) and d.std[0] == pytest.approx(m.prior_std_)
    full = TransferRegressor(sources=SourceModels([src]), method="prior").fit(X[:100], y_tgt[:100])
    assert _err(y_tgt[rest], full.predict(X[rest])) < 0.1  # the scale and offset are learned


def test_a_gp_correction_fades_back_to_the_prior_where_the_rows_say_nothing() -> None:
    """Rows from one side only, where the target leaves its source by a wave: the GP's correction follows the
    wave there and returns to the prior far from the rows (beyond its length scale); linear leaves extrapolate
    it."""
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (400, 2))
    z_src = X[:, 0] * X[:, 1]
    src = GBTRegressor(random_state=0).fit(X, np.exp(z_src))
    wave = np.where(X[:, 1] < 1.8, 0.3 * np.sin(4 * X[:, 1]), 0.0)
    y = np.exp(np.log(2.0) + z_src + wave)
    near, far = np.flatnonzero(X[:, 1] < 1.8)[:30], np.flatnonzero(X[:, 1] > 2.6)
    gp = TransferRegressor(sources=SourceModels([src]), base="gp", random_state=0).fit(X[near], y[near])
    lg = TransferRegressor(sources=SourceModels([src]), base="linear-gbt", random_state=0).fit(X[near], y[near])

    def correction(m, idx):
        return np.log(m.predict(X[idx])) - (m._S(X[idx]) @ m.coef_ + m.intercept_)

    assert spearman(wave[near], correction(gp, near)) > 0.8  # it learns the wave where the rows are
    assert np.median(np.abs(correction(gp, far))) < 0.5 * np.median(np.abs(correction(lg, far)))


@pytest.mark.slow
def test_a_gp_correction_of_few_rows_of_many_features_stays_near_the_prior(monkeypatch) -> None:
    """Eight rows of thirty features, the target its source rescaled plus noise: the correction's length scales
    are searched under a prior on their spread (``CORRECTION_SHRINK``), so the noise of eight rows is not explained
    by a few features and the model ranks unseen rows as its prior does; a free search strays from the prior about
    four times as far (six draws)."""
    import surrogates.models.transfer as transfer

    sources: dict[int, GBTRegressor] = {}  # a draw's source model, fitted once for both searches (the fits' cost)

    def stray(shrink: float | None) -> float:
        monkeypatch.setattr(transfer, "CORRECTION_SHRINK", shrink)
        out = []
        for seed in range(4, 10):
            rng = np.random.default_rng(seed)
            X = rng.uniform(0, 1, (300, 30))
            z_src = 2 * X[:, 0] + np.sin(3 * X[:, 1]) + 0.5 * X[:, 2]
            if seed not in sources:
                sources[seed] = GBTRegressor(random_state=0).fit(X, np.exp(z_src))
            src = sources[seed]
            y = np.exp(0.8 * z_src + 0.2 + rng.normal(0, 0.05, 300))
            m = TransferRegressor(sources=SourceModels([src]), base="gp", random_state=0).fit(X[:8], y[:8])
            assert m.model_.shrink == shrink
            out.append(1 - spearman(m._S(X[8:]) @ m.coef_ + m.intercept_, np.log(m.predict(X[8:]))))
        return float(np.mean(out))

    default = transfer.CORRECTION_SHRINK
    assert default is not None and stray(default) < 0.5 * stray(None)
