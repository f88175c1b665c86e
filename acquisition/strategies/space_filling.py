"""``sobol`` (space-filling): greedy max-min distance to everything measured or already chosen.

In standardised feature space, each pick is the candidate farthest from its nearest measured or picked
configuration (farthest-point sampling), so a batch spreads over the space and avoids what is known. With a
Sobol candidate pool this keeps the low-discrepancy coverage as training grows.
"""

from __future__ import annotations

import numpy as np

from acquisition.strategies._base import QueryContext, Strategy, standardize

__all__ = ["SpaceFilling", "farthest_points"]


def farthest_points(Z: np.ndarray, ref: np.ndarray | None, k: int, rng: np.random.Generator,
                    weight: np.ndarray | None = None) -> list[int]:
    """Greedy farthest-point selection of ``k`` rows of ``Z`` away from ``ref``; ``weight`` scales distances."""
    n = len(Z)
    if ref is not None and len(ref):
        d = np.full(n, np.inf)
        for i in range(0, len(ref), 2048):  # chunks keep memory at n x 2048
            block = ref[i:i + 2048]
            d = np.minimum(d, np.sqrt(((Z[:, None, :] - block[None, :, :]) ** 2).sum(-1)).min(axis=1))
    else:
        d = np.full(n, np.inf)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    picked: list[int] = []
    for _ in range(k):
        score = np.where(np.isinf(d), 1e300, d) * w
        if picked:
            score[picked] = -np.inf
        best = np.flatnonzero(score == score.max())
        i = int(rng.choice(best))
        picked.append(i)
        d = np.minimum(d, np.sqrt(((Z - Z[i]) ** 2).sum(-1)))
    return picked


class SpaceFilling(Strategy):
    name = "sobol"
    needs_model = False

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        ref = ctx.X_train if ctx.X_train is not None else None
        Z, f = standardize(ctx.X, ref)
        return farthest_points(Z, f(ref) if ref is not None and len(ref) else None, k, ctx.rng)
