"""``linear-gbt``: gradient boosting whose leaves are linear models (LightGBM ``linear_tree``) on log-latency.

Latency is piecewise smooth in a block's dimensions: within a regime (the same kernel choice, the same cache
level) it grows almost linearly with channels and work, and steps where the regime changes. Trees with constant
leaves approximate each smooth stretch by a staircase, which costs many samples; a tree with a linear model in
each leaf (Shi et al., "Gradient Boosting With Piece-Wise Linear Regression Trees", IJCAI 2019, as implemented
by LightGBM) fits the stretch and keeps the steps. On the shared TF-NAS table (500 training rows, the rest as
test, medians of 5 splits) it holds 88.6 % (Xeon) and 91.4 % (Titan RTX) of predictions within ±10 %, against
86.9 % and 87.5 % for ``gbt``; on this CPU's ``mbconv`` blocks 80.5 % with 500 training rows and 90.0 % with
2,000 (the measurement repeats within ±10 % for 91.2 %), against 75.2 % and 85.8 % for ``gbt`` with the same
features (``benchmarks/accuracy_bench.py``). scikit-learn has no linear-leaf trees, hence the dependency.

The fitted booster is kept as LightGBM's text model (``model_str_``), so that a predictor bundle holds plain
data only (bundles are loaded with skops, which refuses unknown types) and loads on any platform.

Like ``gbt`` it has no spread of its own: its std is the root mean square of the log residuals on a held-out
fifth of the training rows (a probe model fitted with half the trees at twice the rate), the same for every
input; in the engine, the fold models of :class:`~surrogates.models.committee.CommitteeRegressor` give the
epistemic part.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (300, 2))
    >>> y = np.exp(X[:, 0] * X[:, 1]) * rng.lognormal(0, 0.02, 300)
    >>> m = LinearTreeGBTRegressor(n_estimators=200, random_state=0).fit(X, y)
    >>> bool(np.mean(np.abs(m.predict(X) / y - 1) <= 0.1) > 0.9)
    True
"""

from __future__ import annotations

import warnings

import numpy as np

from surrogates.models._base import LatencyRegressor, check_range, probe_std

__all__ = ["LinearTreeGBTRegressor"]


class LinearTreeGBTRegressor(LatencyRegressor):
    """LightGBM with linear leaves on log-latency; constant held-out std (see the module docstring).

    Defaults (500 trees of 16 leaves at rate 0.06, leaves of >= 10 rows, ridge 0.01 on the leaf models) were
    chosen on this CPU's ``mbconv`` and ``resv1`` blocks and the TF-NAS table (500 and 2,000 training rows): 16
    leaves beat 4 and 8 with 2,000 rows and tie with 500; leaves of >= 20 rows suited the CPU blocks, >= 5 the
    table; 1,000 trees at 0.03 were as accurate but took twice as long to predict (predicting dominates: a
    query scores thousands of candidates).
    """

    def __init__(self, n_estimators: int = 500, learning_rate: float = 0.06, num_leaves: int = 16,
                 min_child_samples: int = 10, linear_lambda: float = 0.01, reg_lambda: float = 0.0,
                 n_jobs: int = 1, random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.linear_lambda = linear_lambda
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state

    _sample_weight = True

    def _validate_params(self) -> None:
        check_range("n_estimators", self.n_estimators, low=1, integer=True)
        check_range("learning_rate", self.learning_rate, low=0.0, low_open=True, high=1.0)
        check_range("num_leaves", self.num_leaves, low=2, high=131072, integer=True)
        check_range("min_child_samples", self.min_child_samples, low=1, integer=True)
        check_range("linear_lambda", self.linear_lambda, low=0.0)
        check_range("reg_lambda", self.reg_lambda, low=0.0)
        check_range("n_jobs", self.n_jobs, low=1, integer=True)

    def _booster(self, n: int, *, n_estimators: int | None = None, learning_rate: float | None = None):
        import lightgbm as lgb

        return lgb.LGBMRegressor(
            n_estimators=int(n_estimators or self.n_estimators),
            learning_rate=float(learning_rate or self.learning_rate), num_leaves=int(self.num_leaves),
            # small training sets: leaves of min_child_samples would leave nothing to split
            min_child_samples=int(max(2, min(self.min_child_samples, n // 10))), min_child_weight=0.0,
            linear_tree=True, linear_lambda=float(self.linear_lambda), reg_lambda=float(self.reg_lambda),
            n_jobs=int(self.n_jobs), random_state=0 if self.random_state is None else int(self.random_state),
            deterministic=True, force_row_wise=True, verbose=-1)

    def _fit_booster(self, X: np.ndarray, z: np.ndarray, sample_weight: np.ndarray | None = None, **kw):
        with warnings.catch_warnings():  # LightGBM warns about feature names it was never given
            warnings.simplefilter("ignore", UserWarning)
            return self._booster(len(z), **kw).fit(X, z, sample_weight=sample_weight)

    def _fit_log(self, X, z, sample_weight=None):
        def probe(Xa, za, Xb, wa=None):  # half the trees at twice the rate, as gbt's probe
            fitted = self._fit_booster(Xa, za, wa, n_estimators=max(1, int(self.n_estimators) // 2),
                                       learning_rate=min(1.0, 2 * float(self.learning_rate)))
            return self._predict_booster(fitted.booster_, Xb)

        self.std_ = probe_std(X, z, self.random_state, probe, sample_weight)
        self._keep(self._fit_booster(X, z, sample_weight))

    def _fit_mean_log(self, X, z, sample_weight=None):
        self.std_ = 0.0
        self._keep(self._fit_booster(X, z, sample_weight))

    def _keep(self, fitted) -> None:
        self.model_str_ = fitted.booster_.model_to_string()
        self._booster_cache = fitted.booster_

    @staticmethod
    def _predict_booster(booster, X: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(X), dtype=float)

    def _booster_of_state(self):
        booster = getattr(self, "_booster_cache", None)
        if booster is None:
            import lightgbm as lgb

            booster = self._booster_cache = lgb.Booster(model_str=self.model_str_)
        return booster

    def _predict_log(self, X):
        mean = self._predict_booster(self._booster_of_state(), X)
        return mean, np.full(len(mean), self.std_), None

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_booster_cache", None)  # rebuilt from model_str_ on first use
        return state
