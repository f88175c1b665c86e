"""``TransferRegressor``: a latency model that learns a new platform on top of other platforms' models.

``sources`` are fitted latency models of the same block family on other platforms, on the same features (see
:mod:`acquisition.transfer`). The model reads their predicted log-latencies ``s_j(x)``:

- ``method="residual"`` (default): a ridge prior ``prior(x) = b + Σ_j a_j s_j(x)`` first — a source that tracks
  the target up to a scale and an offset in log space (a slower device, another thread count) is most of the
  answer from a handful of rows — then the ``base`` model (default ``linear-gbt``) on what the prior misses, with
  the ``s_j`` as extra features beside the block's own, so that it learns where the sources mislead;
- ``method="feature"``: the base model alone on the block's features and the ``s_j``, no prior;
- ``method="prior"``: the ridge prior alone — each source mapped to the target by a scale and an offset in log
  space, the sources weighted by how well they explain the rows. Nothing is learned per configuration, so it
  cannot overfit a few rows, and it cannot learn where the sources mislead either.

**The correction on few rows** (``base="gp"``). Trees fitted on the 20 probes (Sobol corners of the space)
extrapolate what they saw there to the whole space: on the TF-NAS table the ``linear-gbt`` correction ranked the
never-seen rows worse than the source alone (ρ 0.78 against 0.86). A Gaussian process correction fades back to
the prior where the rows say nothing, and ranked them at 0.91 from the same probes; the engine uses it up to a
few hundred rows (:func:`acquisition.engine.transfer_base`). Its length scales are searched under a prior that
pulls them toward their common mean (:data:`CORRECTION_SHRINK`): on 5-10 rows of many features a free search
explains noise by a few features, and the correction then ranks below the prior it corrects.

Chosen on the shared TF-NAS table (one device for the other, ρ 0.86 between them; 10 random draws per training
size; never-seen ρ): samples to ρ 0.95 / 0.98 as a share of plain ``gbt``'s, Titan RTX from Xeon and Xeon from
Titan RTX — ``residual`` + ``linear-gbt`` 0.50 / 0.53 and 0.43 / 0.59; ``feature`` + ``linear-gbt`` 0.43 / 0.48
and 0.44 / 0.46; ``residual`` + ``gbt`` 0.50 / 0.68 and 0.33 / 0.60; ``feature`` + ``gbt`` 0.57 / 0.75 and
0.56 / 0.78. ``feature`` is a little better there at ρ 0.98, but from few rows it cannot find a plain rescaling
(a target 2× its source, 1.6× more on stride-2 blocks: RMS log error 0.21–0.27 on 60 rows against 0.003–0.012
for ``residual``), which is what one CPU seen with other threads, batch or dtype looks like.

``fit(X, y, sample_noise=...)`` weights the ridge prior's rows and the base model's alike (when the base model
takes weights; see :mod:`surrogates.models._base`).

Without sources it is the ``base`` model. A source that does not track the target gets little use from the
trees and the ridge, and the engine goes further: it judges each source on the probe set and fits this model
and the plain one side by side, keeping the one whose out-of-fold predictions are better
(:mod:`acquisition.engine`), so that a bad source cannot cost samples.

**Uncertainty.** The ridge prior is fitted in both methods. Where the target disagrees with its sources, the
correction ``c(x) = mean(x) - prior(x)`` is large, and that is where the model is least sure: the std is
``sqrt(s0² + k² c(x)²)`` with ``s0`` and ``k`` fitted (non-negative least squares on squared residuals) on a
held-out fifth of the rows by a probe fitted on the other four fifths. Below 30 rows it is the base model's
held-out std.

Example:
    >>> import numpy as np
    >>> from surrogates.models import GBTRegressor
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (400, 2))
    >>> src = GBTRegressor(random_state=0).fit(X, np.exp(X[:, 0] * X[:, 1]))  # another platform's model
    >>> y = 3 * np.exp(X[:, 0] * X[:, 1]) ** 0.9 * rng.lognormal(0, 0.03, 400)  # the new one: slower, flatter
    >>> few = rng.permutation(400)[:25]
    >>> m = TransferRegressor(sources=SourceModels([src]), random_state=0).fit(X[few], y[few])
    >>> plain = GBTRegressor(random_state=0).fit(X[few], y[few])
    >>> err = lambda p: float(np.median(np.abs(p / y - 1)))
    >>> err(m.predict(X)) < err(plain.predict(X))
    True
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from surrogates.models._base import LatencyRegressor, check_range

__all__ = ["SourceModels", "TransferRegressor"]

METHODS = ("residual", "feature", "prior")


class SourceModels:
    """Fitted source models, held as one parameter: cloning a :class:`TransferRegressor` (cross-validation, a
    committee) keeps them fitted instead of cloning them to unfitted copies, as scikit-learn does with estimator
    parameters."""

    def __init__(self, models=(), names=()) -> None:
        self.models = list(models)
        self.names = list(names) or [f"source{j}" for j in range(len(self.models))]

    def __len__(self) -> int:
        return len(self.models)

    def __sklearn_clone__(self) -> SourceModels:
        return self

    def log_predictions(self, X: np.ndarray) -> np.ndarray:
        """(n, k) predicted log-latencies of the k sources."""
        if not self.models:
            return np.zeros((len(X), 0))
        return np.column_stack([np.asarray(m.predict_dist(X).mean, dtype=float) for m in self.models])

    def __repr__(self) -> str:
        return f"SourceModels({self.names})"


# the GP correction's prior on its log length scales (GPRegressor's ``shrink``): on the device zoo's 35 features
# the maximum-likelihood correction of 5-10 rows ranked below the prior alone; with it, it is the prior there and
# as good as the free search or better from 20 rows (figures: docs/design-notes.md)
CORRECTION_SHRINK = 1.0


def _base_model(name: str, random_state):
    from surrogates.models import get_model

    m = get_model(name)
    if "random_state" in m.get_params():
        m.set_params(random_state=random_state)
    if "shrink" in m.get_params():
        m.set_params(shrink=CORRECTION_SHRINK)
    return m


class TransferRegressor(LatencyRegressor):
    """Source models + ``base`` model (see the module docstring).

    ``method``: ``residual`` (default: the base model on what the ridge prior misses, with the source predictions
    as extra features) or ``feature`` (the base model on the block's features and the source predictions, no
    prior). ``base``: default ``linear-gbt``. ``alpha``:
    ridge strength of the prior, on standardised source predictions.
    """

    def __init__(self, sources: SourceModels | None = None, base: str = "linear-gbt", method: str = "residual",
                 alpha: float = 1.0, random_state: int | None = None) -> None:
        self.sources = sources
        self.base = base
        self.method = method
        self.alpha = alpha
        self.random_state = random_state

    def _validate_params(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not allowed: expected one of {', '.join(METHODS)}")
        check_range("alpha", self.alpha, low=0.0)
        if self.sources is not None and not isinstance(self.sources, SourceModels):
            raise ValueError(f"sources={self.sources!r} is not allowed: expected SourceModels or None")
        from surrogates.models import list_models

        if self.base not in list_models() or self.base == "transfer":
            raise ValueError(f"base={self.base!r} is not allowed: expected a registered model other than transfer")

    # -- the two stages ------------------------------------------------------------------------------------------
    def _S(self, X: np.ndarray) -> np.ndarray:
        return (self.sources or SourceModels()).log_predictions(X)

    def _supports_weight(self) -> bool:
        from surrogates.models import get_model, list_models

        return self.base in list_models() and get_model(self.base)._supports_weight()

    def _fit_prior(self, S: np.ndarray, z: np.ndarray, sample_weight: np.ndarray | None = None
                   ) -> tuple[np.ndarray, float]:
        """Ridge weights on the source columns and the intercept (weights on standardised columns); rows
        weighted by ``sample_weight`` (mean 1) when given."""
        sw = np.ones(len(z)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        sw = sw / sw.mean()
        zm = float(np.average(z, weights=sw))
        if S.shape[1] == 0:
            return np.zeros(S.shape[1]), zm
        mu, sd = np.average(S, axis=0, weights=sw), S.std(axis=0)
        sd[sd == 0] = 1.0
        Sn = (S - mu) / sd
        zc = z - zm
        w = np.linalg.solve(Sn.T @ (sw[:, None] * Sn) + float(self.alpha) * np.eye(S.shape[1]), Sn.T @ (sw * zc))
        coef = w / sd
        return coef, float(zm - mu @ coef)

    def _stage_fit(self, X: np.ndarray, z: np.ndarray, mean_only: bool, sample_weight: np.ndarray | None = None
                   ) -> tuple:
        S = self._S(X)
        coef, icpt = self._fit_prior(S, z, sample_weight)
        if self._prior_only():
            return coef, icpt, None
        # residual: the base model learns what the prior misses; feature: it learns z itself, from X and S (the
        # prior is then kept only to measure where the target leaves its sources, for the std)
        prior = S @ coef + icpt if self.method != "feature" else np.zeros(len(z))
        model = _base_model(self.base, self.random_state)
        if "calibrate" in model.get_params():
            model.set_params(calibrate=False)
        model._validate_params()
        warm = getattr(self, "_warm_base", None)
        if warm is not None and type(warm) is type(model):
            model._warm_from(warm)
        Xa = np.column_stack([X, S])
        w = sample_weight if model._supports_weight() else None
        model._fit_log_weighted(Xa, z - prior, w, mean_only=mean_only)
        return coef, icpt, model

    def _stage_predict(self, coef, icpt, model, X, S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, correction = mean - prior, the base model's std)."""
        prior = S @ coef + icpt
        if model is None:  # method="prior": the prior's own residual spread
            return prior, np.zeros(len(prior)), np.full(len(prior), float(self.prior_std_))
        out, std, *_ = model._predict_log(np.column_stack([X, S]))
        out = np.asarray(out, dtype=float)
        mean = prior + out if self.method != "feature" else out
        return mean, mean - prior, np.asarray(std, dtype=float)

    def _warm_from(self, fitted: TransferRegressor) -> None:
        # a committee's fold model: its correction starts where the one fitted on all rows ended
        self._warm_base = getattr(fitted, "model_", None)

    def _prior_only(self) -> bool:
        """``method="prior"`` with sources (without any, every method is the base model)."""
        return self.method == "prior" and len(self.sources or ()) > 0

    def _fit_log(self, X, z, sample_weight=None):
        self._fit(X, z, mean_only=False, sample_weight=sample_weight)

    def _fit_mean_log(self, X, z, sample_weight=None):
        self._fit(X, z, mean_only=True, sample_weight=sample_weight)

    def _fit(self, X: np.ndarray, z: np.ndarray, mean_only: bool, sample_weight: np.ndarray | None = None) -> None:
        w = sample_weight
        self.n_sources_ = len(self.sources or ())
        self.s0_, self.k_ = 0.0, 0.0
        if self._prior_only():
            self.coef_, self.intercept_, self.model_ = self._stage_fit(X, z, True, w)
            resid = z - (self._S(X) @ self.coef_ + self.intercept_)
            dof = max(len(z) - self.n_sources_ - 1, 1)  # unbiased for the fitted scale and offset
            self.prior_std_ = float(np.sqrt(np.sum(resid**2) / dof)) if len(z) > 1 else 1.0
            self.source_weights_ = self.coef_.copy()
            return
        if not mean_only and X.shape[0] >= 30 and self.n_sources_:
            rng = np.random.RandomState(0 if self.random_state is None else int(self.random_state))
            perm = rng.permutation(X.shape[0])
            hold, fit = perm[: X.shape[0] // 5], perm[X.shape[0] // 5:]
            c, i, m = self._stage_fit(X[fit], z[fit], True, None if w is None else w[fit])
            mean, corr, _ = self._stage_predict(c, i, m, X[hold], self._S(X[hold]))
            (s0sq, ksq), _ = nnls(np.column_stack([np.ones(len(hold)), corr**2]), (z[hold] - mean) ** 2)
            self.s0_, self.k_ = float(np.sqrt(s0sq)), float(np.sqrt(ksq))
            self.coef_, self.intercept_, self.model_ = self._stage_fit(X, z, True, w)
        else:
            self.coef_, self.intercept_, self.model_ = self._stage_fit(X, z, mean_only, w)
        self.source_weights_ = self.coef_.copy()

    def _predict_log(self, X):
        mean, corr, base_std = self._stage_predict(self.coef_, self.intercept_, self.model_, X, self._S(X))
        fitted = self.s0_ > 0 or self.k_ > 0
        std = np.sqrt(self.s0_**2 + (self.k_ * corr) ** 2) if fitted else base_std
        return mean, std, None
