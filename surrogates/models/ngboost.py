"""``ngboost`` and ``ngboost-ensemble``: natural-gradient boosting of a log-normal latency distribution.

NGBoost (Duan et al., 2020) fits the parameters of a predictive distribution by boosting with natural
gradients. A log-normal on latency is a normal on log-latency with the same scores and natural gradients (the
log-normal's log-density differs from the normal's on log y by a term without parameters), so both models fit
ngboost's ``Normal`` to log-latency: the mean and std it predicts are those of the log-normal.

The wrapper validates its input before ngboost sees it (ngboost checks with ``assert``), keeps ngboost silent
(it prints progress by default) and keeps scikit-learn's conventions, so it passes scikit-learn's estimator
checks where ``ngboost.NGBRegressor`` fails 19 of them.

``ngboost-ensemble`` fits ``n_members`` NGBoost models on bootstrap resamples (different seeds); its
prediction is the mixture: mean of the members' means, variance = mean of the members' variances (noise)
plus the variance of their means (disagreement, largest where the training data are sparse).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (200, 2))
    >>> y = np.exp(X[:, 0] * X[:, 1]) * rng.lognormal(0, 0.05, 200)
    >>> d = NGBoostRegressor(n_estimators=100, random_state=0).fit(X, y).predict_dist(X[:2])
    >>> d.mean.shape, bool((d.std > 0).all())
    ((2,), True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from joblib import Parallel, delayed
from sklearn.tree import DecisionTreeRegressor

from surrogates.models._base import LatencyRegressor, check_range

if TYPE_CHECKING:
    from ngboost import NGBRegressor

__all__ = ["NGBoostEnsembleRegressor", "NGBoostRegressor"]


def _ngb(params: dict, seed: int) -> NGBRegressor:
    from ngboost import NGBRegressor  # imported on first use: ngboost builds its distributions with sympy (~4 s)
    from ngboost.distns import Normal

    # ngboost clones the base tree every iteration; a seeded tree keeps feature-permutation ties deterministic
    base = DecisionTreeRegressor(criterion="squared_error", max_depth=params["max_depth"],
                                 min_samples_leaf=params["min_samples_leaf"], random_state=seed)
    return NGBRegressor(Dist=Normal, Base=base, n_estimators=params["n_estimators"],
                        learning_rate=params["learning_rate"], minibatch_frac=params["minibatch_frac"],
                        verbose=False, random_state=np.random.RandomState(seed))


def _fit_member(params: dict, seed: int, X, z, bootstrap: bool, sample_weight=None) -> NGBRegressor:
    rng = np.random.RandomState(seed)
    if bootstrap:
        idx = rng.randint(0, len(z), len(z))
        X, z = X[idx], z[idx]
        sample_weight = None if sample_weight is None else sample_weight[idx]
    return _ngb(params, seed).fit(X, z, sample_weight=sample_weight)


def _normal_params(model: NGBRegressor, X) -> tuple[np.ndarray, np.ndarray]:
    d = model.pred_dist(X)
    return np.asarray(d.params["loc"], dtype=float), np.asarray(d.params["scale"], dtype=float)


class _NGBParams(LatencyRegressor):
    _sample_weight = True

    def _check_ngb(self) -> None:
        check_range("n_estimators", self.n_estimators, low=1, integer=True)
        check_range("learning_rate", self.learning_rate, low=0.0, high=1.0, low_open=True)
        check_range("max_depth", self.max_depth, low=1, integer=True)
        check_range("min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        check_range("minibatch_frac", self.minibatch_frac, low=0.0, high=1.0, low_open=True)

    def _ngb_params(self) -> dict:
        return {"n_estimators": int(self.n_estimators), "learning_rate": float(self.learning_rate),
                "max_depth": int(self.max_depth), "min_samples_leaf": int(self.min_samples_leaf),
                "minibatch_frac": float(self.minibatch_frac)}

    def _seed(self) -> int:
        rs = self.random_state
        return int(rs) if rs is not None else int(np.random.randint(0, 2**31 - 1))


class NGBoostRegressor(_NGBParams):
    """NGBoost with a log-normal latency distribution (normal on log-latency), trees of ``max_depth``."""

    def __init__(self, n_estimators: int = 500, learning_rate: float = 0.05, max_depth: int = 3,
                 min_samples_leaf: int = 1, minibatch_frac: float = 1.0, calibrate: bool = True,
                 random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.calibrate = calibrate
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.minibatch_frac = minibatch_frac
        self.random_state = random_state

    def _validate_params(self) -> None:
        self._check_ngb()

    def _fit_log(self, X, z, sample_weight=None):
        self.model_ = _fit_member(self._ngb_params(), self._seed(), X, z, False, sample_weight)

    def _predict_log(self, X):
        mean, std = _normal_params(self.model_, X)
        return mean, std, None


class NGBoostEnsembleRegressor(_NGBParams):
    """``n_members`` NGBoost models on bootstrap resamples; mixture mean and std (see the module docstring).
    The members' disagreement is the epistemic part."""

    _epistemic = True

    def __init__(self, n_members: int = 5, n_estimators: int = 300, learning_rate: float = 0.05,
                 max_depth: int = 3, min_samples_leaf: int = 1, minibatch_frac: float = 1.0,
                 calibrate: bool = True, n_jobs: int | None = None, random_state: int | None = None) -> None:
        self.n_members = n_members
        self.calibrate = calibrate
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.minibatch_frac = minibatch_frac
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _validate_params(self) -> None:
        self._check_ngb()
        check_range("n_members", self.n_members, low=2, integer=True)

    def _fit_log(self, X, z, sample_weight=None):
        seed = self._seed()
        params = self._ngb_params()
        self.members_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(params, seed + i, X, z, True, sample_weight) for i in range(int(self.n_members)))

    def _predict_log(self, X):
        locs, scales = zip(*(_normal_params(m, X) for m in self.members_), strict=True)
        loc, scale = np.stack(locs), np.stack(scales)
        mean = loc.mean(axis=0)
        std = np.sqrt((scale**2).mean(axis=0) + loc.var(axis=0))
        return mean, std, None, loc.std(axis=0)
