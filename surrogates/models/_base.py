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

Subclasses implement ``_fit_log(X, z)`` and ``_predict_log(X) -> (mean, std, quantiles | None[, epistemic])``
(a subclass that sets ``_sample_weight = True`` takes ``_fit_log(X, z, sample_weight=None)`` and
``_fit_mean_log`` likewise);
they keep scikit-learn's conventions (``__init__`` stores parameters only, learned state ends in ``_``).

**Measurement noise** (heteroscedastic aleatoric part). ``fit(X, latency, sample_noise=noise)`` takes each
row's relative noise (about the std of its log-latency, e.g. the spread of a measurement's placements; NaN where
unknown). With some rows known, the model (a) learns the noise per input: :attr:`noise_model_`, a shallow
gradient-boosting model of the noise variance on the features (:func:`fit_noise_model`), and ``predict_dist``
reports it as ``LogLatencyDist.noise``. A model with an epistemic part then reports
``std = sqrt(epistemic² + misfit² + noise²)``, where ``misfit²`` is the part of its own noise variance (on the
training rows) that the measured noise does not explain (model error: without it a model that is 75 % within
±10 % on a machine that repeats to 2 % would claim ±2 % intervals); a model without one keeps its std and
exposes the measured noise (at most its std). (b) Rows are weighted by their inverse noise variance where the
model supports weights (:func:`noise_weights`: noise floored at the median known noise, unknown rows at the
median, weights of mean 1), so that a few unstable measurements pull the fit less.

**Calibration.** Models whose spread comes from in-sample fitting (NGBoost's scale, quantile models, tree
spread) are over- or under-confident out of sample. Those with a ``calibrate`` parameter (default True) first
fit on a random 80 % of the rows and measure, on the other 20 %, the factor by which their std must be scaled
so that the central 80 % interval holds 80 % of held-out log-latencies (``std_scale_``); the model is then
refitted on all rows and every std (and native quantile, around the median) is scaled by that factor.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri  # the standard normal's quantile (scipy.stats.norm.ppf), a lighter import
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from surrogates.dist import LogLatencyDist, check_range  # defined apart: they need no scikit-learn

__all__ = ["WEIGHT_BY_NOISE", "LatencyRegressor", "LogLatencyDist", "check_range", "check_sample_noise",
           "fit_noise_model", "noise_weights"]

# Weight rows by inverse noise variance when ``sample_noise`` is given (models that take weights). Measured on
# synthetic heteroscedastic roofline data (mbconv and resv1, noise 2-15 % by block size plus 5 % of rows at
# 30 %, three placements per row, 100/300/1,000 training rows, 3 seeds; scored against the noise-free latency):
# weighting changed no model's test rho by more than 0.0003 (gbt, linear-gbt, rf, a gbt committee) and its
# ±10 % accuracy by -1.6 to +0.9 points (mean -0.2): it does not hurt, it does not help much either, because a
# row's noise from three placements is itself a noisy estimate.
WEIGHT_BY_NOISE = True
# fewer rows of known noise than this: the noise model is their mean variance, the same for every input
MIN_NOISE_MODEL_ROWS = 20


class LatencyRegressor(RegressorMixin, BaseEstimator):
    """Base class: validation, the log transform and the public ``fit``/``predict``/``predict_dist``."""

    def _validate_params(self) -> None:  # subclasses check their parameters here (names and ranges)
        pass

    def fit(self, X, y, sample_noise=None):
        """Fit on features ``X`` (n x d) and latencies ``y`` (n, all > 0); ``sample_noise``: each row's relative
        measurement noise (n, >= 0, NaN where unknown; see the module docstring)."""
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
        noise = check_sample_noise(sample_noise, X.shape[0])
        w = noise_weights(noise) if noise is not None and WEIGHT_BY_NOISE and self._supports_weight() else None
        z = np.log(y)
        self.std_scale_ = self._calibration_scale(X, z, w) if getattr(self, "calibrate", False) else 1.0
        self._fit_log_weighted(X, z, w)
        self.noise_model_, self.noise_var_, self.misfit_var_ = None, None, 0.0
        if noise is not None:
            self.noise_model_, self.noise_var_ = fit_noise_model(X, noise, getattr(self, "random_state", None))
            _, std, epi, _ = self._scaled_dist(X) if self.noise_var_ is not None else (None, None, None, None)
            if epi is not None:
                own = float(np.mean(std**2 - epi**2))  # the model's own noise variance on its training rows
                self.misfit_var_ = max(own - float(np.mean(self._noise_var(X))), 0.0)
        return self

    def _supports_weight(self) -> bool:
        """Whether ``_fit_log`` (and ``_fit_mean_log``) take ``sample_weight``."""
        return bool(getattr(self, "_sample_weight", False))

    def _fit_log_weighted(self, X: np.ndarray, z: np.ndarray, w: np.ndarray | None, *, mean_only: bool = False
                          ) -> None:
        fit = self._fit_mean_log if mean_only else self._fit_log
        if w is None:
            fit(X, z)
        else:
            fit(X, z, sample_weight=w)

    def _noise_var(self, X: np.ndarray) -> np.ndarray:
        """The learned measurement-noise variance of log-latency at ``X``."""
        model = getattr(self, "noise_model_", None)
        if model is not None:
            return np.maximum(np.asarray(model.predict(X), dtype=float), 0.0)
        return np.full(len(X), float(self.noise_var_))

    def _calibration_scale(self, X: np.ndarray, z: np.ndarray, w: np.ndarray | None = None) -> float:
        """Factor on the std that makes the 80 % interval cover 80 % of a held-out fifth (see module docstring)."""
        n = len(z)
        if n < 30:
            return 1.0
        rs = getattr(self, "random_state", None)
        perm = np.random.RandomState(0 if rs is None else int(rs)).permutation(n)
        hold, fit = perm[: n // 5], perm[n // 5:]
        probe = clone(self).set_params(calibrate=False)
        probe._fit_log_weighted(X[fit], z[fit], None if w is None else w[fit])
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
            scale = float(np.quantile(r, 0.8) / ndtri(0.9))
        return float(np.clip(scale, 0.05, 20.0)) if np.isfinite(scale) and scale > 0 else 1.0

    def predict(self, X):
        """Predicted latency (same unit as the training latencies)."""
        return self.predict_dist(X).latency

    def predict_dist(self, X) -> LogLatencyDist:
        """Predictive distribution of log-latency: mean, std and (where native) quantiles."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        mean, std, epi, quantiles = self._scaled_dist(X)
        noise = None
        if getattr(self, "noise_var_", None) is not None:
            var = self._noise_var(X)
            noise = np.sqrt(var)
            if epi is not None:  # per-input: what the model does not know, its misfit, the measured noise
                std = np.sqrt(epi**2 + float(self.misfit_var_) + var)
            else:  # its own std kept; the measured noise is the part of it it can name
                noise = np.minimum(noise, std)
        std = np.maximum(std, 1e-12)
        if epi is not None:
            epi = np.minimum(epi, std)
        return LogLatencyDist(mean, std, quantiles or {}, epi, noise)

    def _scaled_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
        """``_predict_log`` with the calibration scale applied: (mean, std, epistemic or None, quantiles)."""
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
        return mean, std, epi, quantiles or {}

    @property
    def has_epistemic(self) -> bool:
        """Whether ``predict_dist`` reports an epistemic part (a committee's disagreement)."""
        return bool(getattr(self, "_epistemic", False))

    # -- for subclasses ------------------------------------------------------------------------------------
    def _warm_from(self, fitted: LatencyRegressor) -> None:
        """Called on an unfitted copy before it is fitted on a subset of the rows that ``fitted`` (same parameters)
        was fitted on (a committee's fold models): a model whose fit searches hyperparameters may start the search
        where ``fitted`` ended. Default: nothing."""

    def _fit_log(self, X: np.ndarray, z: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_log(self, X: np.ndarray):
        raise NotImplementedError

    def _fit_mean_log(self, X: np.ndarray, z: np.ndarray, **kw) -> None:
        """Fit what the mean prediction needs (a committee member); models whose spread costs extra fits skip
        them here. ``kw``: ``sample_weight`` for models that take it."""
        self._fit_log(X, z, **kw)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


def probe_std(X: np.ndarray, z: np.ndarray, random_state: int | None, fit_predict,
              sample_weight: np.ndarray | None = None) -> float:
    """The constant std of a model without its own: :func:`holdout_std` of a probe fitted on four fifths of the
    rows and scored on the other fifth (``fit_predict(X_fit, z_fit, X_held) -> predicted z``, and
    ``fit_predict(X_fit, z_fit, X_held, w_fit)`` when ``sample_weight`` is given); 0 below 20 rows."""
    if X.shape[0] < 20:
        return 0.0
    from sklearn.model_selection import train_test_split

    idx_a, idx_b = train_test_split(np.arange(X.shape[0]), test_size=0.2, random_state=random_state or 0)
    extra = () if sample_weight is None else (sample_weight[idx_a],)
    return holdout_std(np.asarray(fit_predict(X[idx_a], z[idx_a], X[idx_b], *extra), dtype=float) - z[idx_b])


def holdout_std(residuals: np.ndarray) -> float:
    """Root mean square of held-out log residuals: the homoscedastic std of models without their own."""
    r = np.asarray(residuals, dtype=float)
    return float(np.sqrt(np.mean(r**2))) if r.size else 0.0


def check_sample_noise(sample_noise, n: int) -> np.ndarray | None:
    """``sample_noise`` as a float array of shape (n,) (NaN: unknown), or None when it is None or all unknown;
    ``ValueError`` naming the parameter when it is not one relative noise >= 0 (or NaN) per row."""
    if sample_noise is None:
        return None
    try:
        a = np.asarray(sample_noise, dtype=np.float64)
    except (TypeError, ValueError):
        odd = next((v for v in np.asarray(sample_noise, dtype=object).ravel() if not _is_number(v)), sample_noise)
        raise ValueError(f"sample_noise contains {odd!r}: expected one relative noise per row (numbers >= 0, NaN "
                         "where unknown)") from None
    if a.shape != (n,):
        raise ValueError(f"sample_noise must be one relative noise per row (shape ({n},)), got shape {a.shape}")
    bad = ~np.isnan(a) & ~(np.isfinite(a) & (a >= 0))
    if bad.any():
        raise ValueError(f"sample_noise contains {float(a[bad][0])!r}: expected a relative noise >= 0 (NaN where "
                         "unknown)")
    return None if np.isnan(a).all() else a


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def noise_weights(noise: np.ndarray) -> np.ndarray | None:
    """Inverse-variance row weights of mean 1 from relative noises (NaN: unknown), or None when no row has a
    positive known noise. The noise is floored at the median known noise (a few rows that happened to repeat
    exactly must not dominate the fit) and an unknown row counts as the median, so a row weighs at most 1
    relative to the median and a noisy one less."""
    known = noise[np.isfinite(noise)]
    pos = known[known > 0]
    if not pos.size:
        return None
    med = float(np.median(known))
    med = med if med > 0 else float(pos.min())
    eff = np.where(np.isfinite(noise), np.maximum(noise, med), med)
    w = (med / eff) ** 2
    return w / w.mean()


def fit_noise_model(X: np.ndarray, noise: np.ndarray, random_state: int | None = None):
    """The per-input measurement-noise model: ``(model, mean variance)`` from the rows of known noise.

    A shallow histogram gradient-boosting model with the Poisson loss (log link) of the noise **variance** on
    the features: it predicts the mean variance, positive, per input. Why: one row's noise is an estimate from
    a few placements (three by default), so a row alone says little and a leaf must average many rows
    (``min_samples_leaf`` 20, depth 3, 50 iterations: a few tens of milliseconds on thousands of rows); the
    log of a sample std from three placements is biased low (its mean is below the log of the true std), while
    the mean of sample variances is not, and variances are what the predictive std adds up. Trees need no
    feature scaling (k nearest neighbours would) and find the regimes (large blocks, another kernel) where the
    noise changes. With fewer than :data:`MIN_NOISE_MODEL_ROWS` known rows the model is ``None`` and every
    input gets the mean variance.
    """
    ok = np.isfinite(noise)
    var = noise[ok] ** 2
    mean_var = float(var.mean())
    if ok.sum() < MIN_NOISE_MODEL_ROWS or mean_var <= 0:
        return None, mean_var
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(loss="poisson", max_iter=50, learning_rate=0.1, max_depth=3,
                                          min_samples_leaf=MIN_NOISE_MODEL_ROWS, early_stopping=False,
                                          random_state=random_state if isinstance(random_state, int) else 0)
    return model.fit(X[ok], var), mean_var
