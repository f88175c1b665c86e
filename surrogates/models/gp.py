"""``gp``: a Gaussian process on log-latency (scikit-learn's ``GaussianProcessRegressor``).

Kernel: ``C · RBF(ARD) + White`` on standardised features, the hyperparameters (a length scale per feature, the
amplitude and the noise level) fitted by maximum marginal likelihood; the target is centred and scaled
(``normalize_y``). The noise level is kept at ≥ 1 % of the target's variance: on a few dozen rows in ten
dimensions the likelihood otherwise likes a GP that interpolates its rows (as the transfer model's correction on
the TF-NAS table, 40 rows: never-seen ρ 0.66 with the noise free to vanish, 0.90 with the floor; 7 of 7 replayed
cases improved). Far from its rows the GP returns to the rows' mean with a wide std, which is why it is the
transfer model's correction on few rows (:mod:`surrogates.models.transfer`): a correction that the rows do not
support fades back to the sources' prior instead of extrapolating the probe corners, as trees do.

Cost grows as n³ (0.1 s at 20 rows, 1–2 s at 300, 5–7 s at 600 on this project's 2-core VM): meant for a few
hundred rows. ``predict_dist`` reports the GP's posterior std of the latent function as its epistemic part.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(1, 3, (40, 2)); y = np.exp(0.5 * X[:, 0] - X[:, 1])
    >>> m = GPRegressor(random_state=0).fit(X, y)
    >>> bool(np.allclose(m.predict(X), y, rtol=0.02))
    True
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

from surrogates.models._base import LatencyRegressor, check_range

__all__ = ["GPRegressor"]

NOISE_FLOOR = 1e-2  # the white-noise level's lower bound, as a share of the (normalised) target's variance


class GPRegressor(LatencyRegressor):
    """Gaussian process, ``C · RBF + White`` kernel; ``ard``: one length scale per feature (else one for all);
    ``n_restarts``: extra optimiser starts from random hyperparameters (scikit-learn's
    ``n_restarts_optimizer``)."""

    _epistemic = True

    def __init__(self, ard: bool = True, n_restarts: int = 0, random_state: int | None = None) -> None:
        self.ard = ard
        self.n_restarts = n_restarts
        self.random_state = random_state

    def _validate_params(self) -> None:
        if not isinstance(self.ard, bool | np.bool_):
            raise ValueError(f"ard={self.ard!r} is not allowed: expected True or False")
        check_range("n_restarts", self.n_restarts, low=0, integer=True)

    def _warm_from(self, fitted: GPRegressor) -> None:
        # a committee's fold model: the search starts at the hyperparameters fitted on all rows (it still
        # maximises its own rows' likelihood; on 300 rows it ended at the same optimum in a half to a quarter of
        # the time)
        kernel = getattr(fitted, "kernel_", None)
        if kernel is not None and getattr(fitted, "ard", None) == self.ard:
            self._init_kernel = kernel

    def _fit_log(self, X, z):
        self.scaler_ = StandardScaler().fit(X)
        d = X.shape[1]
        kernel = getattr(self, "_init_kernel", None)
        if kernel is None:
            kernel = (C(1.0, (1e-4, 1e2)) * RBF(np.ones(d) if self.ard else 1.0, (1e-1, 1e2))
                      + WhiteKernel(1e-1, (NOISE_FLOOR, 1.0)))
        self.model_ = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=int(self.n_restarts),
                                               random_state=self.random_state)
        with warnings.catch_warnings():
            # a length scale at its bound means the feature does not matter: the fit is still the optimum
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(self.scaler_.transform(X), z)
        self.kernel_ = self.model_.kernel_
        # the white-noise part, on the scale of z: what a measurement adds to the latent function's std
        self.noise_std_ = float(np.sqrt(self.kernel_.k2.noise_level) * np.atleast_1d(self.model_._y_train_std)[0])

    def _predict_log(self, X):
        mean, std = self.model_.predict(self.scaler_.transform(X), return_std=True)
        epi = np.sqrt(np.maximum(np.asarray(std, dtype=float) ** 2 - self.noise_std_**2, 0.0))
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float), None, epi
