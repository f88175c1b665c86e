"""The batch query: which configurations an iteration asks for, and the cost model its strategy reads.

Contract: :meth:`BatchQuery.select` returns ``(config, drawn, predicted log-latency)`` for up to ``k`` candidates
not measured yet: ``random_share`` of them drawn at random (``drawn = random``), the rest chosen by the campaign's
strategy (``drawn = strategy``, :mod:`acquisition.strategies`), whose cost model (predicted profiling seconds,
learned from what the ledger charged) is fitted only when the strategy asks for it.

The candidates are a fresh random draw of ``pool_size``, except for a family whose counts are traced (a plug-in
without closed-form counts, :func:`profiler.families.trace_seconds`): counting a fresh 4,000-candidate pool of
``mbconv``-sized blocks on torch's meta device takes about 30 s, several times what a batch's measurements take on
this CPU. There the fresh draw is as large as :data:`COUNT_SHARE` of the batch's expected device time can count (at
least twice the batch), and the pool is topped up to ``pool_size`` with the earlier pools' candidates still unasked
(counted once, cached).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from acquisition.campaign import CampaignSpec
from acquisition.contracts import CampaignStore
from acquisition.loop.base import TrainingData, stream

__all__ = ["COUNT_SHARE", "BatchQuery", "CostModel"]

# a traced family's fresh candidates per query: counting them costs at most this share of the batch's expected
# device time (its size times the median charge of a measured row). Small pools cost no samples: on the TF-NAS
# table 60 candidates reached the target with fewer than 4,000 did (docs/design-notes.md, issue 30).
COUNT_SHARE = 0.05


class CostModel:
    """Estimated profiling seconds of a configuration, learned from what the ledger charged so far: gradient
    boosting on log-seconds (no uncertainty needed, so one fit), the median charge until 10 rows exist."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.model: Any = None
        self.fallback = 1.0

    def fit(self, X: np.ndarray, cost_s: np.ndarray) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        cost_s = np.maximum(np.asarray(cost_s, dtype=float), 1e-3)
        self.fallback = float(np.median(cost_s)) if len(cost_s) else 1.0
        self.model = None
        if len(cost_s) >= 10:
            self.model = HistGradientBoostingRegressor(
                max_iter=100, learning_rate=0.05, min_samples_leaf=max(1, min(5, len(cost_s) // 10)),
                early_stopping=False, random_state=self.seed).fit(X, np.log(cost_s))

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.full(len(X), self.fallback)
        return np.exp(self.model.predict(X))


class BatchQuery:
    """One campaign's queries (see the module docstring). ``encode(rows)``: the features of stored measurements;
    ``draw``: candidates (:func:`acquisition.loop.base.sampler`); the protocols say which fidelity's charges the
    cost model learns from."""

    def __init__(self, store: CampaignStore, spec: CampaignSpec, strategy: Any, encoder: Any,
                 encode: Callable[[list[dict[str, Any]]], np.ndarray], draw: Any, full_protocol: Any,
                 cheap_protocol: Any) -> None:
        self.store, self.spec, self.strategy, self.encoder, self.encode = store, spec, strategy, encoder, encode
        self.draw, self.full_protocol, self.cheap_protocol = draw, full_protocol, cheap_protocol
        self.cost_model = CostModel(spec.seed)
        self.rng_base = stream(spec.seed, "query")
        self.last_s = 0.0
        self.carry: list[dict[str, Any]] | None = None  # a traced family's unasked candidates of the last pool

    def pool_for(self, k: int) -> int:
        """The pool of a query of ``k``: ``pool_size``, at least ``2 k`` (a smaller one leaves the strategy no
        choice)."""
        return max(self.spec.pool_size, 2 * k)

    def fresh_size(self, data: TrainingData, k: int) -> int:
        """How many fresh candidates a query of ``k`` draws: ``pool_size`` (at least ``2 k``), or for a family whose
        counts are traced as many as :data:`COUNT_SHARE` of the batch's expected device time counts (at least
        ``2 k``)."""
        from profiler.families import trace_seconds

        size = self.pool_for(k)
        per = trace_seconds(self.encoder.family)
        if per is None:
            return size
        costs = [r["cost_s"] for r in data.rows if r.get("cost_s")]
        if not costs or not np.isfinite(per) or per <= 0:  # nothing to size it by yet: the smallest pool
            n = 2.0 * k
        else:
            n = COUNT_SHARE * k * float(np.median(costs)) / per
        return int(min(size, max(2 * k, n)))

    def candidates(self, data: TrainingData, it: int, k: int, exclude: set[str]) -> list[dict[str, Any]]:
        """The pool of one query, none of it in ``exclude``: a fresh random draw first (its head is the random
        share), then, for a traced family, the last pool's unasked candidates up to ``pool_size``."""
        n, size = self.fresh_size(data, k), self.pool_for(k)
        fresh = self.draw(n, "random", stream(self.rng_base, it), exclude)
        if n >= size:
            return fresh
        key = self.encoder.family.key
        seen = exclude | {key(c) for c in fresh}
        kept = [c for c in (self.carry or []) if key(c) not in seen]
        self.carry = []
        return fresh + kept[:max(0, size - len(fresh))]

    def select(self, model: Any, data: TrainingData, it: int, k: int, cheap: bool = False,
               pending: set[str] = frozenset()) -> list[tuple[dict[str, Any], str, float]]:
        """The next batch: ``random_share`` of it uniformly from the candidates, the rest by the strategy; each
        with the model's predicted log-latency (stored with the ask: prequential evidence). ``pending``: keys
        asked and not measured yet (a pipelined campaign's batch in flight), never asked again."""
        from acquisition.strategies import QueryContext

        t0 = time.perf_counter()
        spec = self.spec
        pool = self.candidates(data, it, k, set(self.store.member_keys(spec.name)) | set(pending))
        if not pool or k <= 0:
            self.last_s = 0.0
            return []
        rng = np.random.default_rng(stream(self.rng_base, it, 1))
        n_rand = k if spec.strategy == "random" else (max(1, round(spec.random_share * k)) if spec.random_share
                                                        else 0)
        n_rand = min(n_rand, len(pool))
        # the pool is a random sample of the candidates in random order: its first n_rand are a random draw
        chosen = [(c, "random") for c in pool[:n_rand]]
        rest = pool[n_rand:]
        if k - n_rand > 0 and rest:
            X_pool = self.encoder.transform(rest, validated=True)
            all_rows = self.store.members(spec.name, "train")
            proto = (self.cheap_protocol if cheap else self.full_protocol)
            same = [r for r in all_rows if proto is not None and r["protocol"] == proto.id]
            all_rows = same if len(same) >= 10 else all_rows  # costs at the fidelity the batch will be measured at

            def pool_cost(rows: list[dict[str, Any]] = all_rows, X: np.ndarray = X_pool) -> np.ndarray:
                self.cost_model.fit(self.encode(rows), np.asarray([r["cost_s"] for r in rows]))
                return self.cost_model.predict(X)

            ctx = QueryContext(candidates=rest, X=X_pool, cost_s=pool_cost,  # fitted only if the strategy asks
                               rng=rng, model=model, X_train=data.X, y_train=data.y)
            chosen += [(rest[i], "strategy") for i in self.strategy(ctx, k - n_rand)]
        if self.carry is not None:  # a traced family: what was not asked stays a candidate (counted, cached)
            asked = {id(c) for c, _ in chosen}
            self.carry = [c for c in pool if id(c) not in asked]
        # the model's prediction of every row before it is measured: prequential evidence (acquisition.verification)
        pred = (model.predict_dist(self.encoder.transform([c for c, _ in chosen], validated=True)).mean if chosen
                else [])
        self.last_s = time.perf_counter() - t0
        return [(c, drawn, float(p)) for (c, drawn), p in zip(chosen, pred, strict=True)]
