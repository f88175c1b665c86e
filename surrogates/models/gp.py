"""``gp``: a Gaussian process on log-latency (scikit-learn's ``GaussianProcessRegressor``).

Kernel: ``C · RBF(ARD) + White`` on standardised features, the hyperparameters (a length scale per feature, the
amplitude and the noise level) fitted by maximum marginal likelihood; the target is centred and scaled
(``normalize_y``). The noise level is kept at ≥ 1 % of the target's variance: on a few dozen rows in ten
dimensions the likelihood otherwise likes a GP that interpolates its rows (as the transfer model's correction on
the TF-NAS table, 40 rows: never-seen ρ 0.66 with the noise free to vanish, 0.90 with the floor; 7 of 7 replayed
cases improved). Far from its rows the GP returns to the rows' mean with a wide std, which is why it is the
transfer model's correction on few rows (:mod:`surrogates.models.transfer`): a correction that the rows do not
support fades back to the sources' prior instead of extrapolating the probe corners, as trees do.

The search starts at length scales of sqrt(d), not 1: standardised rows lie about sqrt(2d) apart, and from
length 1 a table of many one-hot columns had a kernel of ~0 off the diagonal, no likelihood gradient and a
constant prediction. The search's cost grows as rows² · features per step: beyond ``search_cost`` it reads a
random subset of that size, and the GP is then conditioned on every row with the hyperparameters found (n³ once:
milliseconds at a thousand rows). On ten numeric features this ranks as well as the full search at a fraction of
its time; on a hundred one-hot columns the subset is small and ranks worse (figures: ``docs/design-notes.md``).
``shrink`` pulls the log length scales toward their common mean (a prior, whose weight stays fixed while the
likelihood's grows with the rows): on a few rows of many features, maximum likelihood picks a few features to
explain noise by (figures: ``docs/design-notes.md``).
``predict_dist`` reports the GP's posterior std of the latent function as its epistemic part.
A committee's fold models start their search at the hyperparameters fitted on all rows; ``fold_maxiter`` caps it
at that many L-BFGS-B iterations (default ``None``: to convergence). A cap of 20 cut the committee's fit on live
``mbconv`` rows (35 features, 60–160 rows) to 0.58–0.70× the time, its out-of-fold ρ within 0.003 of where it was
against the never-seen ρ, but campaigns on the TF-NAS table then needed 1.03× [0.99, 1.05] the samples to a
verified ρ of 0.98 (10 seeds, paired), so it is not the default (figures: ``docs/benchmarks/2026-12-07-fit-cost.md``).

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(1, 3, (40, 2)); y = np.exp(0.5 * X[:, 0] - X[:, 1])
    >>> m = GPRegressor(random_state=0).fit(X, y)
    >>> bool(np.allclose(m.predict(X), y, rtol=0.02))
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

from surrogates.models._base import LatencyRegressor, check_range

__all__ = ["GPRegressor"]

NOISE_FLOOR = 1e-2  # the white-noise level's lower bound, as a share of the (normalised) target's variance
# the hyperparameter search reads at most rows² · features = this (300 rows of ten features: 1-2 s a search here)
SEARCH_COST = 300**2 * 10


def _fit(gpr: GaussianProcessRegressor, X: np.ndarray, z: np.ndarray) -> GaussianProcessRegressor:
    with warnings.catch_warnings():
        # a length scale at its bound means the feature does not matter: the fit is still the optimum
        warnings.simplefilter("ignore", ConvergenceWarning)
        gpr.fit(X, z)
    if callable(gpr.optimizer):
        # the search minimised likelihood + prior: report the likelihood itself, as scikit-learn's attribute says;
        # what was searched is in kernel_, and an exported model holds no closure
        gpr.log_marginal_likelihood_value_ = float(gpr.log_marginal_likelihood(gpr.kernel_.theta))
        gpr.optimizer = "fmin_l_bfgs_b"
    return gpr


class _Search:
    """L-BFGS-B on the negative log marginal likelihood, as scikit-learn's own, with two options:

    - ``tau``: plus a Gaussian prior that pulls the log length scales (``theta[lo:hi]``) toward their own mean with
      std ``tau``: on a few rows, one length scale per feature is more hyperparameters than the rows can pin down,
      and a maximum-likelihood search lands on a different corner with every batch; the prior's weight is
      constant while the likelihood's grows with the rows;
    - ``maxiter``: at most this many iterations (a committee's fold model, which starts at the full model's optimum).
    """

    def __init__(self, tau: float | None = None, lo: int = 0, hi: int = 0, maxiter: int | None = None) -> None:
        self.tau, self.lo, self.hi, self.maxiter = tau, lo, hi, maxiter

    def __call__(self, obj_func, initial_theta, bounds):
        from scipy.optimize import minimize

        def f(theta):
            val, grad = obj_func(theta, eval_gradient=True)
            if self.tau is None:
                return val, grad
            ell = theta[self.lo:self.hi]
            dev = ell - ell.mean()
            g = np.array(grad, dtype=float)
            g[self.lo:self.hi] += dev / self.tau**2
            return val + 0.5 * float(dev @ dev) / self.tau**2, g

        options = {} if self.maxiter is None else {"maxiter": int(self.maxiter)}
        res = minimize(f, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds, options=options)
        return res.x, res.fun


class GPRegressor(LatencyRegressor):
    """Gaussian process, ``C · RBF + White`` kernel; ``ard``: one length scale per feature (else one for all);
    ``n_restarts``: extra optimiser starts from random hyperparameters (scikit-learn's
    ``n_restarts_optimizer``); ``search_cost``: the hyperparameters are searched on at most as many rows as
    keep rows² · features within it (:meth:`search_rows`; ``None``: on every row); ``shrink``: with ``ard``, a
    Gaussian prior of this std on the log length scales around their mean (a maximum a posteriori search; ``None``:
    maximum likelihood). The transfer model's correction uses it: on a few rows of many features, one free length
    scale per feature lets the likelihood find a correction in noise. ``fold_maxiter``: a committee's fold model
    starts its search at the hyperparameters fitted on all rows and takes at most this many L-BFGS-B iterations
    (``None``: to convergence)."""

    _epistemic = True

    def __init__(self, ard: bool = True, n_restarts: int = 0, search_cost: int | None = SEARCH_COST,
                 shrink: float | None = None, fold_maxiter: int | None = None,
                 random_state: int | None = None) -> None:
        self.ard = ard
        self.fold_maxiter = fold_maxiter
        self.shrink = shrink
        self.n_restarts = n_restarts
        self.search_cost = search_cost
        self.random_state = random_state

    def _validate_params(self) -> None:
        if not isinstance(self.ard, bool | np.bool_):
            raise ValueError(f"ard={self.ard!r} is not allowed: expected True or False")
        check_range("n_restarts", self.n_restarts, low=0, integer=True)
        if self.search_cost is not None:
            check_range("search_cost", self.search_cost, low=1, integer=True)
        if self.shrink is not None:
            check_range("shrink", self.shrink, low=0.0, low_open=True)
        if self.fold_maxiter is not None:
            check_range("fold_maxiter", self.fold_maxiter, low=1, integer=True)

    def search_rows(self, n_rows: int, n_features: int) -> int:
        """How many of ``n_rows`` rows the hyperparameter search reads: all while ``rows² · features`` ≤
        ``search_cost`` (the likelihood gradient's cost), else a random subset of that size (at least 20)."""
        if self.search_cost is None:
            return n_rows
        return min(n_rows, max(20, int(np.sqrt(self.search_cost / max(n_features, 1)))))

    def _warm_from(self, fitted: GPRegressor) -> None:
        # a committee's fold model: the search starts at the hyperparameters fitted on all rows (it still
        # maximises its own rows' likelihood; on 300 rows it ended at the same optimum in a half to a quarter of
        # the time)
        kernel = getattr(fitted, "kernel_", None)
        if kernel is not None and getattr(fitted, "ard", None) == self.ard:
            self._init_kernel = kernel

    def _fit_log(self, X, z):
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        n, d = X.shape
        m = self.search_rows(n, d)
        kernel = getattr(self, "_init_kernel", None)
        # a fold model of a committee whose full model searched on a subset keeps that model's hyperparameters
        search = kernel is None or m == n
        if kernel is None:
            # the search starts at length scales of sqrt(d): squared distances of standardised rows grow with d, and
            # from length 1 a many-column (one-hot) table has a kernel of ~0 off the diagonal and no gradient
            ell = float(np.sqrt(max(d, 1)))
            kernel = (C(1.0, (1e-4, 1e2)) * RBF(np.full(d, ell) if self.ard else ell, (1e-1, 1e3))
                      + WhiteKernel(1e-1, (NOISE_FLOOR, 1.0)))
        if search and m < n:
            # the hyperparameters from a random subset, then the GP conditioned on every row with them: the
            # search's cost stays bounded, the posterior uses all the rows (n³ once, milliseconds at 1,000 rows)
            rows = np.random.default_rng(self.random_state).choice(n, m, replace=False)
            kernel = _fit(self._gpr(kernel, d=d), Xs[rows], z[rows]).kernel_
            search = False
        self.model_ = _fit(self._gpr(kernel, search, d), Xs, z)
        self.kernel_ = self.model_.kernel_
        # the white-noise part, on the scale of z: what a measurement adds to the latent function's std
        self.noise_std_ = float(np.sqrt(self.kernel_.k2.noise_level) * np.atleast_1d(self.model_._y_train_std)[0])

    def _gpr(self, kernel, search: bool = True, d: int = 1) -> GaussianProcessRegressor:
        optimizer: Any = "fmin_l_bfgs_b"
        fold = getattr(self, "_init_kernel", None) is not None and self.fold_maxiter is not None
        if self.shrink is not None and self.ard and d > 1:
            # theta: log amplitude, d log lengths, log noise
            optimizer = _Search(float(self.shrink), 1, 1 + d, maxiter=self.fold_maxiter if fold else None)
        elif fold:
            optimizer = _Search(maxiter=self.fold_maxiter)
        return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=int(self.n_restarts),
                                        optimizer=optimizer if search else None, random_state=self.random_state)

    def _predict_log(self, X):
        mean, std = self.model_.predict(self.scaler_.transform(X), return_std=True)
        epi = np.sqrt(np.maximum(np.asarray(std, dtype=float) ** 2 - self.noise_std_**2, 0.0))
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float), None, epi
