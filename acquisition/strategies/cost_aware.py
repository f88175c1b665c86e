"""``cost-aware``: most information per second of profiling.

The score of a candidate is its epistemic variance of log-latency (committee disagreement) divided by its
estimated profiling cost (seconds), ``ctx.cost_s``: the engine learns that cost from the ledger (a model of the
seconds each stored measurement was charged, on the same features), so cheap, uncertain blocks come first and an
expensive block is chosen only when it is proportionally more uncertain.
"""

from __future__ import annotations

import numpy as np

from acquisition.strategies._base import QueryContext, Strategy, top_k

__all__ = ["CostAwareStrategy"]


class CostAwareStrategy(Strategy):
    name = "cost-aware"
    needs_epistemic = True

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        cost = np.maximum(np.asarray(ctx.cost_s, dtype=float), 1e-3)
        return top_k(ctx.epistemic**2 / cost, k, ctx.rng)
