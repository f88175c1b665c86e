"""``error-driven``: refine around the configurations the model gets most wrong (nn-Meter's adaptive sampling).

Out-of-fold predictions of the training rows find the measured configurations with the largest relative error;
each new candidate is the unmeasured one nearest (standardised feature space) to one of those, taken in order of
error, so the batch fills in around the hard regions. Half of the batch (``explore``) is left to the model's
uncertainty, so the strategy does not only chase known errors.

The out-of-fold predictions are the campaign model's own when it has them (``ctx.model.oof_log_``: the K-fold
committee that every ``cv`` campaign, the default ``run``, fits anyway), so the strategy fits nothing. It used to
cross-validate a second model in every query (5 boosting fits): about 3x the other strategies' query time at 200
training rows and 11x at 1,000, for out-of-fold predictions the committee already had. A plain model (``holdout``
verification, as in the studies' strategy arms) has none, so the strategy still cross-validates a fast
gradient-boosting model in its query: the same work the other strategies' committees do in their fit, so its
query is the slow step but its iteration is not (figures: ``docs/design-notes.md``, "error-driven's query time").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from acquisition.strategies._base import QueryContext, Strategy, top_k
from acquisition.strategies._feature_space import standardize

__all__ = ["ErrorDrivenStrategy", "out_of_fold_log"]


def out_of_fold_log(model: Any, X_train: np.ndarray, y_train: np.ndarray, folds: int = 5) -> np.ndarray:
    """Out-of-fold predicted log-latency of every training row: the model's own (``oof_log_``, fitted on exactly
    these rows) when it has them, else a ``folds``-fold cross-validation of a fast gradient-boosting model."""
    oof = getattr(model, "oof_log_", None)
    if oof is not None and len(oof) == len(y_train) and np.all(np.isfinite(oof)):
        return np.asarray(oof, dtype=float)
    from sklearn.model_selection import cross_val_predict

    from surrogates.models import GBTRegressor

    return np.log(cross_val_predict(GBTRegressor(max_iter=200, random_state=0), X_train, y_train, cv=folds))


class ErrorDrivenStrategy(Strategy):
    name = "error-driven"

    def __init__(self, explore: float = 0.5, folds: int = 5) -> None:
        self.explore = explore
        self.folds = folds

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        X_tr, y_tr = ctx.X_train, ctx.y_train
        n_explore = round(k * float(self.explore))
        if X_tr is None or y_tr is None or len(y_tr) < 2 * self.folds:
            return top_k(ctx.dist.std, k, ctx.rng)
        err = np.abs(out_of_fold_log(ctx.model, X_tr, y_tr, self.folds) - np.log(y_tr))
        hard = np.argsort(-err, kind="stable")[: max(k - n_explore, 0)]
        Z, f = standardize(ctx.X, X_tr)
        taken = np.zeros(len(Z), dtype=bool)
        picked: list[int] = []
        for h in f(X_tr[hard]):
            d = ((Z - h) ** 2).sum(axis=1)
            d[taken] = np.inf
            i = int(np.argmin(d))
            picked.append(i)
            taken[i] = True
        std = ctx.dist.std.copy()
        std[taken] = -np.inf
        picked += top_k(std, k - len(picked), ctx.rng)
        return picked
