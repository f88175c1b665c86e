"""``representative``: one uncertain candidate from each region of the pool, cheapest information first.

The candidate pool is a random sample of the space (or of a replay table), i.e. of the distribution the
validation set and the user's networks come from. The pool is split into ``k`` clusters by k-means in
standardised feature space, and from each cluster the candidate with the highest predictive variance of
log-latency per estimated profiling second (``std² / cost^alpha``) is chosen. A batch therefore follows the
density of the space (no batch spent on one corner of it, the failure of pure max-σ picks) and, within each
region, asks for what the model knows least per second of device time (cluster-based diverse mini-batch
active learning, Zhdanov 2019, with the cost-aware score).
"""

from __future__ import annotations

import numpy as np

from acquisition.strategies._base import QueryContext, Strategy, standardize, top_k

__all__ = ["RepresentativeStrategy"]


class RepresentativeStrategy(Strategy):
    name = "representative"
    needs_epistemic = True

    def __init__(self, alpha: float = 1.0, max_pool: int = 4000) -> None:
        self.alpha = alpha
        self.max_pool = max_pool

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        from sklearn.cluster import KMeans

        n = len(ctx.candidates)
        idx = np.arange(n) if n <= self.max_pool else np.sort(ctx.rng.choice(n, self.max_pool, replace=False))
        Z, _ = standardize(ctx.X[idx])
        cost = np.maximum(np.asarray(ctx.cost_s, dtype=float)[idx], 1e-3)
        score = ctx.epistemic[idx] ** 2 / cost ** self.alpha
        labels = KMeans(n_clusters=min(k, len(idx)), n_init=1, random_state=int(ctx.rng.integers(2**31 - 1))
                        ).fit_predict(Z)
        picked = []
        for c in range(labels.max() + 1):
            members = np.flatnonzero(labels == c)
            if len(members):
                picked.append(int(idx[members[np.argmax(score[members])]]))
        if len(picked) < k:  # empty clusters: fill with the best remaining scores
            chosen = set(picked)
            full = np.full(n, -np.inf)
            full[idx] = score
            picked += [i for i in top_k(full, n, ctx.rng) if i not in chosen][: k - len(picked)]
        return picked[:k]
