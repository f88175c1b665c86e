"""``diverse``: uncertain candidates, but no near-duplicates in one batch.

Takes the ``pool_factor * k`` most uncertain candidates, then picks ``k`` of them by farthest-point selection
weighted by uncertainty (each pick maximises std x distance to the nearest measured or already picked
configuration in standardised feature space). A batch of pure max-std picks tends to cluster in one corner of
the space (e.g. the largest blocks); this spreads it while still following the uncertainty.
"""

from __future__ import annotations

import numpy as np

from acquisition.strategies._base import QueryContext, Strategy, standardize, top_k
from acquisition.strategies.space_filling import farthest_points

__all__ = ["DiverseStrategy"]


class DiverseStrategy(Strategy):
    name = "diverse"
    needs_epistemic = True

    def __init__(self, pool_factor: int = 10) -> None:
        self.pool_factor = pool_factor

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        std = ctx.epistemic
        short = np.asarray(top_k(std, min(len(std), self.pool_factor * k), ctx.rng))
        ref = ctx.X_train if ctx.X_train is not None and len(ctx.X_train) else None
        Z, f = standardize(ctx.X[short], ref)
        picked = farthest_points(Z, f(ref) if ref is not None else None, k, ctx.rng, weight=std[short])
        return [int(short[i]) for i in picked]
