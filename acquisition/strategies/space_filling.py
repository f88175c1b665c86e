"""``sobol`` (space-filling): greedy max-min distance to everything measured or already chosen.

In standardised feature space, each pick is the candidate farthest from its nearest measured or picked
configuration (farthest-point sampling), so a batch spreads over the space and avoids what is known. With a
Sobol candidate pool this keeps the low-discrepancy coverage as training grows.
"""

from __future__ import annotations

from acquisition.strategies._base import QueryContext, Strategy
from acquisition.strategies._feature_space import farthest_points, space_filling

__all__ = ["SpaceFilling", "farthest_points"]


class SpaceFilling(Strategy):
    name = "sobol"
    needs_model = False

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        return space_filling(ctx.X, ctx.X_train, k, ctx.rng)
