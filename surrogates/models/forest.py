"""``rf``: a random forest on log-latency; uncertainty from the spread across trees plus out-of-bag noise.

The std of one prediction is ``sqrt(spread^2 + noise^2)``: ``spread`` is the standard deviation of the trees'
predictions (where the forest disagrees with itself: the epistemic part), ``noise`` the part of the out-of-bag
error that the spread does not explain (measurement noise and bias), estimated once at fit time.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(1, 3, (80, 2)); y = np.exp(X[:, 0] * X[:, 1])
    >>> d = ForestRegressor(n_estimators=50, random_state=0).fit(X, y).predict_dist(X[:3])
    >>> d.mean.shape, bool((d.std > 0).all())
    ((3,), True)
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from surrogates.models._base import LatencyRegressor, check_range

__all__ = ["ForestRegressor"]


class ForestRegressor(LatencyRegressor):
    """Random forest (``n_estimators`` trees, ``min_samples_leaf``, ``max_features``) on log-latency."""

    _epistemic = True
    _sample_weight = True

    def __init__(self, n_estimators: int = 300, min_samples_leaf: int = 1, max_features: float = 1.0,
                 calibrate: bool = True, n_jobs: int | None = None, random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.calibrate = calibrate
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _validate_params(self) -> None:
        check_range("n_estimators", self.n_estimators, low=2, integer=True)
        check_range("min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        check_range("max_features", self.max_features, low=0.0, high=1.0, low_open=True)

    def _fit_log(self, X, z, sample_weight=None):
        oob = X.shape[0] >= 10
        self.forest_ = RandomForestRegressor(
            n_estimators=int(self.n_estimators), min_samples_leaf=int(self.min_samples_leaf),
            max_features=float(self.max_features), oob_score=oob, n_jobs=self.n_jobs,
            random_state=self.random_state).fit(X, z, sample_weight=sample_weight)
        noise2 = 0.0
        if oob:
            pred = self.forest_.oob_prediction_
            ok = np.isfinite(pred)
            if ok.any():
                resid2 = np.mean((pred[ok] - z[ok]) ** 2)
                spread2 = np.mean(self._tree_predictions(X[ok]).var(axis=0))
                noise2 = max(resid2 - spread2, 0.0)
        self.noise_std_ = float(np.sqrt(noise2))

    def _tree_predictions(self, X):
        return np.stack([t.predict(X) for t in self.forest_.estimators_])

    def _predict_log(self, X):
        per_tree = self._tree_predictions(X)
        mean = per_tree.mean(axis=0)
        spread = per_tree.std(axis=0)
        std = np.sqrt(spread**2 + self.noise_std_**2)
        return mean, std, None, spread
