"""``CommitteeRegressor``: K fold models around any latency model, for an epistemic std and cross-validation.

The wrapped model (``estimator``, default ``gbt``) is fitted on all rows and gives the point prediction. Beside
it, ``n_folds`` copies are fitted on the K-fold complements (each on (K-1)/K of the rows). They serve twice:

- **What the model does not know.** Their disagreement on a new input is the epistemic part of the predictive
  std: the delete-group jackknife estimate ``sqrt((K-1)/K · Σ_k (m_k - m̄)²)`` of the variance of the fitted
  model's log-latency. It is large where the data leave the model free (sparse corners, few similar rows) and
  small where every fold agrees, which is what an acquisition strategy must chase; measurement noise is not in it.
- **Verification for free.** Each row is predicted by the fold model that did not see it (``oof_log_``), so
  the campaign can judge the model by cross-validation on what it measured instead of profiling a validation
  set that is then thrown away. The fold models see (K-1)/K of the rows, so the estimate is slightly
  pessimistic: a stop rule on it errs on the safe side.

The noise part is a constant: the out-of-fold residuals' mean square minus the mean epistemic variance at the
training rows. The total std is then scaled so that the central 80 % interval holds 80 % of the out-of-fold
residuals (no refit needed). Members are fitted for their mean only (``gbt`` skips its held-out probe).
``fit(X, y, sample_noise=...)`` weights every member's rows alike (when the wrapped model takes weights) and
learns the measured noise once, for the committee (:mod:`surrogates.models._base`).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (120, 2))
    >>> y = np.exp(X[:, 0] * X[:, 1]) * rng.lognormal(0, 0.05, 120)
    >>> m = CommitteeRegressor(n_folds=4, random_state=0).fit(X, y)
    >>> d = m.predict_dist(np.array([[2.0, 2.0], [2.9, 2.9]]))
    >>> len(m.members_), m.oof_log_.shape, bool((d.epistemic <= d.std).all())
    (4, (120,), True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy.special import ndtri  # the standard normal's quantile (scipy.stats.norm.ppf), a lighter import
from sklearn.base import clone
from sklearn.model_selection import KFold

from surrogates.models._base import LatencyRegressor, check_range

__all__ = ["CommitteeRegressor", "members_with"]

# fits a committee's fold models inside members_with(): mapper(func, tasks) -> [func(*task) for task in tasks]
_MAPPER: ContextVar[Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]] | None] = ContextVar(
    "committee_members_mapper", default=None)


@contextmanager
def members_with(mapper: Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]) -> Iterator[None]:
    """Within the block, a committee whose ``n_jobs`` is ``None`` fits its fold models with ``mapper(func, tasks)``,
    which returns ``[func(*task) for task in tasks]`` in order, computed where it likes: the fleet's engine spreads
    them over worker processes (:meth:`acquisition.loop.fitpool.FitPool.map`). The models are the same.

        >>> import numpy as np
        >>> X = np.random.default_rng(0).uniform(1, 3, (40, 2)); y = np.exp(X[:, 0] - X[:, 1])
        >>> calls = []
        >>> def mapper(func, tasks):
        ...     calls.append(len(tasks))
        ...     return [func(*t) for t in tasks]
        >>> with members_with(mapper):
        ...     m = CommitteeRegressor(n_folds=4, random_state=0).fit(X, y)
        >>> calls, len(m.members_)
        ([4], 4)
    """
    token = _MAPPER.set(mapper)
    try:
        yield
    finally:
        _MAPPER.reset(token)


def _fit_mean(estimator: LatencyRegressor, X: np.ndarray, z: np.ndarray, w: np.ndarray | None = None,
              warm: LatencyRegressor | None = None) -> LatencyRegressor:
    m = clone(estimator)
    if "calibrate" in m.get_params():
        m.set_params(calibrate=False)  # only the member's mean is used
    m._validate_params()
    if warm is not None:
        m._warm_from(warm)
    m._fit_log_weighted(X, z, w, mean_only=True)
    return m


def _mean(m: LatencyRegressor, X: np.ndarray) -> np.ndarray:
    return np.asarray(m._predict_log(X)[0], dtype=float)


class CommitteeRegressor(LatencyRegressor):
    """K-fold committee around ``estimator`` (a :class:`LatencyRegressor`; default ``GBTRegressor()``)."""

    _epistemic = True

    def __init__(self, estimator: LatencyRegressor | None = None, n_folds: int = 5, n_jobs: int | None = None,
                 random_state: int | None = None) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _validate_params(self) -> None:
        check_range("n_folds", self.n_folds, low=2, integer=True)
        if self.estimator is not None and not isinstance(self.estimator, LatencyRegressor):
            raise ValueError(f"estimator={self.estimator!r} is not allowed: expected a latency model "
                             "(a surrogates.LatencyRegressor)")

    def _supports_weight(self) -> bool:
        return self._base()._supports_weight()

    def _base(self) -> LatencyRegressor:
        if self.estimator is not None:
            return self.estimator
        from surrogates.models.boosting import GBTRegressor

        return GBTRegressor()

    def _fit_log(self, X, z, sample_weight=None):
        base = self._base()
        if self.random_state is not None and "random_state" in base.get_params():
            base = clone(base).set_params(random_state=self.random_state)
        n = len(z)
        k = min(int(self.n_folds), n // 2)
        self.oof_log_ = np.full(n, np.nan)
        self.members_: list[LatencyRegressor] = []
        splits = list(KFold(k, shuffle=True, random_state=self.random_state or 0).split(X)) if k >= 2 else []
        # the model on all rows first: a fold model may start its hyperparameter search where it ended
        # (LatencyRegressor._warm_from: a Gaussian process's fold fits take a half to a quarter of the time)
        self.model_ = _fit_mean(base, X, z, sample_weight)
        tasks = [(base, X[a], z[a], None if sample_weight is None else sample_weight[a], self.model_)
                 for a, _ in splits]
        mapper = _MAPPER.get() if self.n_jobs is None and len(tasks) > 1 else None
        self.members_ = list(mapper(_fit_mean, tasks) if mapper is not None
                             else Parallel(n_jobs=self.n_jobs)(delayed(_fit_mean)(*t) for t in tasks))
        for m, (_, b) in zip(self.members_, splits, strict=True):
            self.oof_log_[b] = _mean(m, X[b])
        if not self.members_:  # too few rows for folds: in-sample, no disagreement
            self.oof_log_ = _mean(self.model_, X)
            self.noise_std_, self.std_scale_ = float(np.std(z - self.oof_log_)), 1.0
            return
        epi = self._epistemic_std(X)
        r = z - self.oof_log_
        self.noise_std_ = float(np.sqrt(max(np.mean(r**2) - np.mean(epi**2), 0.0)))
        total = np.sqrt(epi**2 + self.noise_std_**2)
        ratio = np.abs(r) / np.maximum(total, 1e-12)
        scale = float(np.quantile(ratio, 0.8) / ndtri(0.9))
        self.std_scale_ = float(np.clip(scale, 0.05, 20.0)) if np.isfinite(scale) and scale > 0 else 1.0

    def _epistemic_std(self, X: np.ndarray) -> np.ndarray:
        if not self.members_:
            return np.zeros(len(X))
        preds = np.stack([_mean(m, X) for m in self.members_])
        k = len(self.members_)
        return np.sqrt((k - 1) * preds.var(axis=0))

    def _predict_log(self, X):
        mean = _mean(self.model_, X)
        epi = self._epistemic_std(X)
        return mean, np.sqrt(epi**2 + self.noise_std_**2), None, epi

    @property
    def oof_latency_(self) -> np.ndarray:
        """Out-of-fold predicted latencies of the training rows (same unit as the training latencies)."""
        return np.exp(self.oof_log_)
