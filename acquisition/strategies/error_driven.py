"""``error-driven``: refine around the configurations the model gets most wrong (nn-Meter's adaptive sampling).

Out-of-fold predictions of the training rows (5-fold, a fast gradient-boosting model) find the measured
configurations with the largest relative error; each new candidate is the unmeasured one nearest (standardised
feature space) to one of those, taken in order of error, so the batch fills in around the hard regions. Half of
the batch (``explore``) is left to the model's uncertainty, so the strategy does not only chase known errors.
"""

from __future__ import annotations

import numpy as np

from acquisition.strategies._base import QueryContext, Strategy, standardize, top_k

__all__ = ["ErrorDrivenStrategy"]


class ErrorDrivenStrategy(Strategy):
    name = "error-driven"

    def __init__(self, explore: float = 0.5, folds: int = 5) -> None:
        self.explore = explore
        self.folds = folds

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        from sklearn.model_selection import cross_val_predict

        from surrogates.models import GBTRegressor

        X_tr, y_tr = ctx.X_train, ctx.y_train
        n_explore = round(k * float(self.explore))
        if X_tr is None or y_tr is None or len(y_tr) < 2 * self.folds:
            return top_k(ctx.dist.std, k, ctx.rng)
        oof = cross_val_predict(GBTRegressor(max_iter=200, random_state=0), X_tr, y_tr, cv=self.folds)
        err = np.abs(np.log(oof) - np.log(y_tr))
        hard = np.argsort(-err)
        Z, f = standardize(ctx.X, X_tr)
        H = f(X_tr[hard])
        taken = np.zeros(len(Z), dtype=bool)
        picked: list[int] = []
        for h in H:
            if len(picked) >= k - n_explore:
                break
            d = ((Z - h) ** 2).sum(axis=1)
            d[taken] = np.inf
            i = int(np.argmin(d))
            picked.append(i)
            taken[i] = True
        std = ctx.dist.std.copy()
        std[taken] = -np.inf
        picked += top_k(std, k - len(picked), ctx.rng)
        return picked
