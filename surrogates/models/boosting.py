"""Gradient-boosted trees on log-latency: ``gbt`` (squared loss) and ``quantile-gbt`` (quantile ensemble).

Both use scikit-learn's histogram gradient boosting (fast on large candidate pools).

- ``gbt``: the paper's best model, with the defaults of the paper's reference implementation (TensorFlow Decision
  Forests: 300 trees, shrinkage 0.1); on the TF-NAS table and the stored CPU blocks it matches 500 trees at 0.05
  in ρ and ±10 % accuracy at 60 % of the fitting time. It has no uncertainty of its own: its std is the root
  mean square of the log residuals on a held-out fifth of the training rows, the same for every input. That
  probe is fitted with half the trees at twice the learning rate (it costs half a fit), then the model is fitted
  on all rows. On the TF-NAS table (both devices, 50–1,500 rows, 3 splits) the probe's error against the
  model's true held-out RMS is dominated by the small held-out fifth: median |log ratio| 0.03–0.57 with the
  half-size probe against 0.08–0.66 with a full-size one. In a committee (:mod:`surrogates.models.committee`) the
  fold models boost ``fold_iter`` rounds (150) at the same total shrinkage (0.2): they serve the out-of-fold
  predictions and the epistemic std, not the point prediction. On the TF-NAS table (both devices, 40–400 rows, 6
  splits) their out-of-fold ρ stood within 0.006 of where 300 rounds put it against the full model's never-seen
  ρ, for 53–61 % of the committee's fit and prediction time; 100 rounds were up to 0.012 more pessimistic at 40
  rows (``docs/benchmarks/2026-12-07-fit-cost.md``).
- ``quantile-gbt``: three models for the ``alpha``, 0.5 and ``1 - alpha`` quantiles of log-latency. The
  median is the point prediction, the quantiles are native, and the std is the interval width over the width
  of the same normal interval, i.e. a per-input uncertainty. Crossing quantiles are sorted.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (300, 2))
    >>> y = np.exp(X[:, 0] * X[:, 1]) * rng.lognormal(0, 0.05, 300)
    >>> d = QuantileGBTRegressor(random_state=0).fit(X, y).predict_dist(X[:2])
    >>> sorted(d.quantiles), bool((d.quantiles[0.1] <= d.quantiles[0.9]).all())
    ([0.1, 0.5, 0.9], True)
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from scipy.special import ndtri  # the standard normal's quantile (scipy.stats.norm.ppf), a lighter import
from sklearn.ensemble import HistGradientBoostingRegressor

from surrogates.models._base import LatencyRegressor, check_range, probe_std

__all__ = ["GBTRegressor", "QuantileGBTRegressor"]


def _hgb(loss: str, quantile: float | None, params: dict, random_state) -> HistGradientBoostingRegressor:
    extra = {"quantile": quantile} if loss == "quantile" else {}
    return HistGradientBoostingRegressor(loss=loss, random_state=random_state, **extra, **params)


def _fit_hgb(loss: str, quantile: float | None, params: dict, random_state, X, z, sample_weight=None):
    return _hgb(loss, quantile, params, random_state).fit(X, z, sample_weight=sample_weight)


class _HGBParams(LatencyRegressor):
    _sample_weight = True

    def _check_common(self) -> None:
        check_range("max_iter", self.max_iter, low=1, integer=True)
        check_range("learning_rate", self.learning_rate, low=0.0, low_open=True, high=1.0)
        check_range("max_leaf_nodes", self.max_leaf_nodes, low=2, integer=True)
        check_range("min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        check_range("l2_regularization", self.l2_regularization, low=0.0)

    def _hgb_params(self, n: int) -> dict:
        return {"max_iter": int(self.max_iter), "learning_rate": float(self.learning_rate),
                "max_leaf_nodes": int(self.max_leaf_nodes),
                # small training sets: leaves of min_samples_leaf would leave nothing to split
                "min_samples_leaf": int(max(1, min(self.min_samples_leaf, n // 10))),
                "l2_regularization": float(self.l2_regularization), "early_stopping": False}


class GBTRegressor(_HGBParams):
    """Histogram gradient boosting, squared loss on log-latency; constant held-out std."""

    def __init__(self, max_iter: int = 300, learning_rate: float = 0.1, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 5, l2_regularization: float = 0.0, fold_iter: int | None = 150,
                 random_state: int | None = None) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.fold_iter = fold_iter
        self.random_state = random_state

    def _validate_params(self) -> None:
        self._check_common()
        if self.fold_iter is not None:
            check_range("fold_iter", self.fold_iter, low=1, integer=True)

    def _warm_from(self, fitted: LatencyRegressor) -> None:
        self._fold = True  # a committee's fold model: fold_iter rounds (see _fold_params)

    def _fold_params(self, n: int) -> dict:
        """A fold model's boosting: ``fold_iter`` rounds at the same total shrinkage (max_iter · learning_rate)."""
        params = self._hgb_params(n)
        if getattr(self, "_fold", False) and self.fold_iter is not None and self.fold_iter < self.max_iter:
            params.update(max_iter=int(self.fold_iter),
                          learning_rate=min(1.0, float(self.learning_rate) * int(self.max_iter) / int(self.fold_iter)))
        return params

    def _fit_log(self, X, z, sample_weight=None):
        params = self._hgb_params(X.shape[0])

        def probe(Xa, za, Xb, wa=None):  # half the trees at twice the rate: see the module docstring
            probe_params = self._hgb_params(len(za))
            probe_params.update(max_iter=max(1, int(self.max_iter) // 2),
                                learning_rate=min(1.0, 2 * float(self.learning_rate)))
            return _fit_hgb("squared_error", None, probe_params, self.random_state, Xa, za, wa).predict(Xb)

        self.std_ = probe_std(X, z, self.random_state, probe, sample_weight)
        self.model_ = _fit_hgb("squared_error", None, params, self.random_state, X, z, sample_weight)
        self.n_iter_ = int(self.model_.n_iter_)

    def _fit_mean_log(self, X, z, sample_weight=None):
        self.std_ = 0.0
        self.model_ = _fit_hgb("squared_error", None, self._fold_params(X.shape[0]), self.random_state, X, z,
                               sample_weight)
        self.n_iter_ = int(self.model_.n_iter_)

    def _predict_log(self, X):
        mean = self.model_.predict(X)
        return mean, np.full(len(mean), self.std_), None


class QuantileGBTRegressor(_HGBParams):
    """Ensemble of quantile gradient-boosting models (``alpha``, 0.5, ``1 - alpha``) on log-latency."""

    def __init__(self, alpha: float = 0.1, max_iter: int = 200, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 31, min_samples_leaf: int = 5, l2_regularization: float = 0.0,
                 calibrate: bool = True, n_jobs: int | None = None, random_state: int | None = None) -> None:
        self.alpha = alpha
        self.calibrate = calibrate
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _validate_params(self) -> None:
        self._check_common()
        check_range("alpha", self.alpha, low=0.0, high=0.5, low_open=True, high_open=True)

    @property
    def levels(self) -> tuple[float, float, float]:
        a = float(self.alpha)
        return (a, 0.5, 1.0 - a)

    def _fit_log(self, X, z, sample_weight=None):
        params = self._hgb_params(X.shape[0])
        self.models_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_hgb)("quantile", q, params, self.random_state, X, z, sample_weight) for q in self.levels)
        self.n_iter_ = max(int(m.n_iter_) for m in self.models_)

    def _predict_log(self, X):
        qs = np.sort(np.stack([m.predict(X) for m in self.models_]), axis=0)  # no crossing quantiles
        lo, med, hi = qs
        width = 2 * ndtri(1.0 - float(self.alpha))
        return med, (hi - lo) / width, dict(zip(self.levels, qs, strict=True))
