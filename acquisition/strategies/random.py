"""``random``: uniformly random candidates (the baseline every saving is measured against)."""

from __future__ import annotations

from acquisition.strategies._base import QueryContext, Strategy

__all__ = ["RandomStrategy"]


class RandomStrategy(Strategy):
    name = "random"
    needs_model = False

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        return [int(i) for i in ctx.rng.choice(len(ctx.candidates), size=k, replace=False)]
