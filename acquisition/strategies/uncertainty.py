"""``uncertainty`` and ``interval``: the candidates the model is least sure about.

- ``uncertainty``: highest epistemic std of log-latency (committee disagreement, not noise; a relative
  uncertainty, so a 0.1 ms block and a 50 ms block compete on equal terms);
- ``interval``: widest 10-90 % quantile interval of log-latency, using the model's native quantiles where it
  has them (``quantile-gbt``), a normal approximation otherwise.
"""

from __future__ import annotations

from acquisition.strategies._base import QueryContext, Strategy, top_k

__all__ = ["IntervalStrategy", "UncertaintyStrategy"]


class UncertaintyStrategy(Strategy):
    name = "uncertainty"
    needs_epistemic = True

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        return top_k(ctx.epistemic, k, ctx.rng)


class IntervalStrategy(Strategy):
    name = "interval"

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        d = ctx.dist
        return top_k(d.quantile(0.9) - d.quantile(0.1), k, ctx.rng)
