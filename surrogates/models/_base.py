"""The contract every latency model keeps, and the predictive distribution it returns.

A latency model is a scikit-learn regressor on a numeric feature matrix (:class:`surrogates.FeatureEncoder`
makes one from configurations). ``fit(X, latency)`` takes latencies (> 0, any unit) and regresses their
logarithm internally; ``predict(X)`` returns latencies in the same unit (``exp`` of the predicted mean
log-latency, i.e. the median of the predictive distribution); ``predict_dist(X)`` returns a
:class:`LogLatencyDist`: the mean and standard deviation of log-latency (a relative uncertainty: a std of 0.1
is about ±10 %), where the model has them natively quantiles, and where it has one the **epistemic** part of
the std: what the model does not know (disagreement of a committee: trees of a forest, members of an ensemble,
the posterior of linear weights, the fold models of :class:`~surrogates.models.committee.CommitteeRegressor`),
kept apart from measurement noise. Strategies that chase what the model does not know read ``epistemic``;
``std`` is the whole predictive spread (noise and ignorance together).

Subclasses implement ``_fit_log(X, z)`` and ``_predict_log(X) -> (mean, std, quantiles | None[, epistemic])``;
they keep scikit-learn's conventions (``__init__`` stores parameters only, learned state ends in ``_``).

**Calibration.** Models whose spread comes from in-sample fitting (NGBoost's scale, quantile models, tree
spread) are over- or under-confident out of sample. Those with a ``calibrate`` parameter (default True) first
fit on a random 80 % of the rows and measure, on the other 20 %, the factor by which their std must be scaled
so that the central 80 % interval holds 80 % of held-out log-latencies (``std_scale_``); the model is then
refitted on all rows and every std (and native quantile, around the median) is scaled by that factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LatencyRegressor", "LogLatencyDist", "check_range"]


def check_range(name: str, value: object, *, low: float | None = None, high: float | None = None,
                integer: bool = False, low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming the parameter and its allowed range when ``value`` is outside it."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = np.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name}={value!r} is not allowed: expected {what} with {lo}{name}{hi}")


@dataclass(frozen=True)
class LogLatencyDist:
    """Predictive distribution of log-latency for n inputs.

    ``mean`` and ``std`` are arrays of shape (n,); ``quantiles`` maps a level in (0, 1) to an array of
    log-latency quantiles (present when the model predicts them natively, e.g. quantile gradient boosting).
    ``epistemic`` (shape (n,), or None for a model without a committee) is the part of ``std`` that comes from
    what the model does not know; ``noise`` is the rest.
    """

    mean: np.ndarray
    std: np.ndarray
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)
    epistemic: np.ndarray | None = None

    @property
    def noise(self) -> np.ndarray:
        """The part of ``std`` that is not epistemic (all of it for a model without an epistemic part)."""
        if self.epistemic is None:
            return self.std
        return np.sqrt(np.maximum(self.std**2 - self.epistemic**2, 0.0))

    @property
    def latency(self) -> np.ndarray:
        """Point prediction in latency units: ``exp(mean)`` (the median of a log-normal)."""
        return np.exp(self.mean)

    def quantile(self, level: float) -> np.ndarray:
        """Log-latency quantile at ``level``: native when available, else from a normal of ``mean``/``std``."""
        check_range("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        for q, v in self.quantiles.items():
            if abs(q - level) < 1e-9:
                return v
        return self.mean + norm.ppf(level) * self.std

    def interval(self, coverage: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """Central interval of latency (not log) holding ``coverage`` of the predictive mass."""
        check_range("coverage", coverage, low=0.0, high=1.0, low_open=True, high_open=True)
        a = (1.0 - coverage) / 2
        return np.exp(self.quantile(a)), np.exp(self.quantile(1.0 - a))


class LatencyRegressor(RegressorMixin, BaseEstimator):
    """Base class: validation, the log transform and the public ``fit``/``predict``/``predict_dist``."""

    def _validate_params(self) -> None:  # subclasses check their parameters here (names and ranges)
        pass

    def fit(self, X, y):
        """Fit on features ``X`` (n x d) and latencies ``y`` (n, all > 0)."""
        self._validate_params()
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"y must be one latency per row (shape (n,)), got shape {y.shape}")
        if not np.all(y > 0):
            bad = y[~(y > 0)][0]
            raise ValueError(f"latencies must be positive (the model regresses their logarithm); got y={bad!r}")
        if X.shape[0] < 2:
            raise ValueError(f"n_samples={X.shape[0]} is too few: at least 2 rows are needed to fit")
        z = np.log(y)
        self.std_scale_ = self._calibration_scale(X, z) if getattr(self, "calibrate", False) else 1.0
        self._fit_log(X, z)
        return self

    def _calibration_scale(self, X: np.ndarray, z: np.ndarray) -> float:
        """Factor on the std that makes the 80 % interval cover 80 % of a held-out fifth (see module docstring)."""
        n = len(z)
        if n < 30:
            return 1.0
        rs = getattr(self, "random_state", None)
        perm = np.random.RandomState(0 if rs is None else int(rs)).permutation(n)
        hold, fit = perm[: n // 5], perm[n // 5:]
        probe = clone(self).set_params(calibrate=False)
        probe._fit_log(X[fit], z[fit])
        mean, std, quantiles, *_ = probe._predict_log(X[hold])
        mean, zh = np.asarray(mean, dtype=float), z[hold]
        if quantiles and 0.1 in quantiles and 0.9 in quantiles:
            # native quantiles: the factor each point needs on its own side of the median, so that the scaled
            # (possibly asymmetric) 10-90 % interval holds it
            lo, hi = quantiles[0.1], quantiles[0.9]
            r = np.where(zh >= mean, (zh - mean) / np.maximum(hi - mean, 1e-12),
                         (mean - zh) / np.maximum(mean - lo, 1e-12))
            scale = float(np.quantile(r, 0.8))
        else:
            r = np.abs(zh - mean) / np.maximum(np.asarray(std, dtype=float), 1e-12)
            scale = float(np.quantile(r, 0.8) / norm.ppf(0.9))
        return float(np.clip(scale, 0.05, 20.0)) if np.isfinite(scale) and scale > 0 else 1.0

    def predict(self, X):
        """Predicted latency (same unit as the training latencies)."""
        return self.predict_dist(X).latency

    def predict_dist(self, X) -> LogLatencyDist:
        """Predictive distribution of log-latency: mean, std and (where native) quantiles."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        mean, std, quantiles, *rest = self._predict_log(X)
        mean = np.asarray(mean, dtype=float)
        s = float(getattr(self, "std_scale_", 1.0))
        std = np.asarray(std, dtype=float) * s
        if quantiles and s != 1.0:
            quantiles = {q: mean + s * (v - mean) for q, v in quantiles.items()}
        epi = rest[0] if rest else None
        if epi is not None:
            std = np.maximum(std, 1e-12)
            epi = np.minimum(np.asarray(epi, dtype=float) * s, std)
        return LogLatencyDist(mean, np.maximum(std, 1e-12), quantiles or {}, epi)

    @property
    def has_epistemic(self) -> bool:
        """Whether ``predict_dist`` reports an epistemic part (a committee's disagreement)."""
        return bool(getattr(self, "_epistemic", False))

    # -- for subclasses ------------------------------------------------------------------------------------
    def _fit_log(self, X: np.ndarray, z: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_log(self, X: np.ndarray):
        raise NotImplementedError

    def _fit_mean_log(self, X: np.ndarray, z: np.ndarray) -> None:
        """Fit what the mean prediction needs (a committee member); models whose spread costs extra fits skip
        them here."""
        self._fit_log(X, z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


def probe_std(X: np.ndarray, z: np.ndarray, random_state: int | None, fit_predict) -> float:
    """The constant std of a model without its own: :func:`holdout_std` of a probe fitted on four fifths of the
    rows and scored on the other fifth (``fit_predict(X_fit, z_fit, X_held) -> predicted z``); 0 below 20 rows."""
    if X.shape[0] < 20:
        return 0.0
    from sklearn.model_selection import train_test_split

    Xa, Xb, za, zb = train_test_split(X, z, test_size=0.2, random_state=random_state or 0)
    return holdout_std(np.asarray(fit_predict(Xa, za, Xb), dtype=float) - zb)


def holdout_std(residuals: np.ndarray) -> float:
    """Root mean square of held-out log residuals: the homoscedastic std of models without their own."""
    r = np.asarray(residuals, dtype=float)
    return float(np.sqrt(np.mean(r**2))) if r.size else 0.0
