"""``linear``: the exponentially-activated linear model of the paper (eq. 3), tau = exp(W c + b).

Fitted in log space (log tau = W c + b) by Bayesian ridge regression on standardised features, which gives
the same model as the paper's gradient descent on the linear layer, in closed form, plus a predictive std
(the posterior of the weights, its epistemic part, and the fitted noise level).

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(1, 3, (50, 2)); y = np.exp(0.5 * X[:, 0] - X[:, 1])
    >>> m = ExpLinearRegressor().fit(X, y)
    >>> bool(np.allclose(m.predict(X), y, rtol=0.01))
    True
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import StandardScaler

from surrogates.models._base import LatencyRegressor, check_range

__all__ = ["ExpLinearRegressor"]


class ExpLinearRegressor(LatencyRegressor):
    """tau = exp(W c + b), weights by Bayesian ridge on standardised features (``max_iter`` EM steps)."""

    _epistemic = True
    _sample_weight = True

    def __init__(self, max_iter: int = 300) -> None:
        self.max_iter = max_iter

    def _validate_params(self) -> None:
        check_range("max_iter", self.max_iter, low=1, integer=True)

    def _fit_log(self, X, z, sample_weight=None):
        self.scaler_ = StandardScaler().fit(X)
        self.model_ = BayesianRidge(max_iter=int(self.max_iter)).fit(self.scaler_.transform(X), z,
                                                                     sample_weight=sample_weight)
        self.n_iter_ = int(self.model_.n_iter_)

    def _predict_log(self, X):
        mean, std = self.model_.predict(self.scaler_.transform(X), return_std=True)
        # predictive variance = posterior variance of W.c + noise 1/alpha: the first part is epistemic
        epi = np.sqrt(np.maximum(std**2 - 1.0 / self.model_.alpha_, 0.0))
        return mean, std, None, epi
