"""The strategy contract: choose the next batch of configurations to profile.

A strategy gets a :class:`QueryContext` (the fitted model, the candidate pool with its features and estimated
profiling cost, the training data so far, a seeded random generator) and returns the indices of ``k`` distinct
candidates, best first. It must not profile, write to the store or keep state between calls beyond what its
constructor stores: the loop may be killed and resumed between any two calls.

Example:
    >>> import numpy as np
    >>> ctx = QueryContext(candidates=[{"a": i} for i in range(10)], X=np.arange(10.0)[:, None],
    ...                    cost_s=np.ones(10), rng=np.random.default_rng(0))
    >>> picked = get_strategy("random").select(ctx, 3)
    >>> len(picked), len(set(picked))
    (3, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from acquisition.strategies._feature_space import space_filling, standardize

__all__ = ["QueryContext", "Strategy", "StrategyError", "get_strategy", "list_strategies", "register_strategy",
           "standardize", "top_k"]


class StrategyError(ValueError):
    """An unknown strategy, a bad registration, or a strategy that broke the contract."""


class QueryContext:
    """What a strategy may look at. ``model`` is None before the first fit (strategies then fall back to
    random or space-filling choices). ``X``/``cost_s`` are aligned with ``candidates``; ``X_train``/``y_train``
    are the features and latencies (ms) measured so far. ``cost_s`` may be given as an array or as a function
    of no arguments returning one: the engine passes a function, so the cost model is only fitted for
    strategies that read ``ctx.cost_s``."""

    def __init__(self, candidates: Sequence[dict[str, Any]], X: np.ndarray,
                 cost_s: np.ndarray | Callable[[], np.ndarray], rng: np.random.Generator, model: Any = None,
                 X_train: np.ndarray | None = None, y_train: np.ndarray | None = None) -> None:
        self.candidates = candidates
        self.X = X
        self._cost = cost_s
        self.rng = rng
        self.model = model
        self.X_train = X_train
        self.y_train = y_train
        self._dist: Any = None

    @property
    def cost_s(self) -> np.ndarray:
        """Estimated profiling seconds of each candidate (computed on first use)."""
        if callable(self._cost):
            cost = np.asarray(self._cost(), dtype=float)
            if cost.shape != (len(self.candidates),):
                raise StrategyError(f"cost_s has shape {cost.shape}, expected ({len(self.candidates)},)")
            self._cost = cost
        return self._cost

    @property
    def dist(self):
        """The model's predictive distribution on the candidates (computed once, shared by strategies)."""
        if self.model is None:
            raise StrategyError("this strategy needs a fitted model")
        if self._dist is None:
            self._dist = self.model.predict_dist(self.X)
        return self._dist

    @property
    def epistemic(self) -> np.ndarray:
        """What the model does not know about each candidate: the epistemic std of log-latency (committee
        disagreement), never measurement noise. Raises :class:`StrategyError` for a model without one."""
        epi = self.dist.epistemic
        if epi is None:
            raise StrategyError(f"model {type(self.model).__name__} has no epistemic uncertainty (its std is "
                                "noise): wrap it in surrogates.models.CommitteeRegressor")
        return epi

    def __repr__(self) -> str:
        return f"QueryContext({len(self.candidates)} candidates, model={type(self.model).__name__})"


class Strategy:
    """Base class: subclasses set ``name`` and implement ``select(ctx, k) -> list[int]``."""

    name: str = ""
    needs_model: bool = True
    needs_epistemic: bool = False  # reads ctx.epistemic: refuses a model without a committee

    def select(self, ctx: QueryContext, k: int) -> list[int]:
        raise NotImplementedError

    def __call__(self, ctx: QueryContext, k: int) -> list[int]:
        """``select`` with the contract checked: ``min(k, len(pool))`` distinct valid indices."""
        n = len(ctx.candidates)
        want = min(int(k), n)
        if want <= 0:
            return []
        if self.needs_model and ctx.model is None:
            picked = space_filling(ctx.X, ctx.X_train, want, ctx.rng)  # what the ``sobol`` strategy picks
        else:
            if self.needs_epistemic and not getattr(ctx.model, "has_epistemic", False):
                raise StrategyError(f"strategy {self.name!r} needs a model with an epistemic uncertainty (committee "
                                    f"disagreement); {type(ctx.model).__name__} has none: wrap it in "
                                    "surrogates.models.CommitteeRegressor")
            picked = [int(i) for i in self.select(ctx, want)]
        if len(picked) != want or len(set(picked)) != want or not all(0 <= i < n for i in picked):
            raise StrategyError(f"strategy {self.name!r} returned {len(picked)} indices ({len(set(picked))} "
                                f"distinct) for a batch of {want} from {n} candidates")
        return picked

    def __repr__(self) -> str:
        return f"<strategy {self.name!r}>"


def top_k(score: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """Indices of the ``k`` highest scores, ties broken at random (so equal scores do not favour pool order)."""
    jitter = rng.random(len(score)) * 1e-12
    order = np.lexsort((jitter, -np.asarray(score, dtype=float)))
    return [int(i) for i in order[:k]]


_REGISTRY: dict[str, Callable[[], Strategy]] = {}


def register_strategy(name: str, factory: Callable[[], Strategy], *, replace: bool = False) -> None:
    """Make a strategy available by name (``factory()`` returns a :class:`Strategy`)."""
    if not isinstance(name, str) or not name:
        raise StrategyError(f"strategy name {name!r} must be a non-empty string")
    if name in _REGISTRY and not replace:
        raise StrategyError(f"strategy {name!r} is already registered (pass replace=True to override)")
    if not callable(factory):
        raise StrategyError(f"strategy {name!r}: factory {factory!r} is not callable")
    _REGISTRY[name] = factory


def get_strategy(name: str) -> Strategy:
    # the built-ins are registered by the package's __init__, which Python runs before this module is imported
    if name not in _REGISTRY:
        raise StrategyError(f"unknown strategy {name!r}: available strategies are {', '.join(list_strategies())}")
    return _REGISTRY[name]()


def list_strategies() -> list[str]:
    return list(_REGISTRY)
