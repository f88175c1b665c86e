"""Query strategies: which configurations to profile next (docs/design.md §5).

Each strategy lives in its own module and follows the contract of :mod:`acquisition.strategies._base`.
Add your own by subclassing :class:`Strategy` and calling :func:`register_strategy` (in a module imported with
``--plugin``), or through the ``latency_acquisition.strategies`` entry point of an installed package
(:mod:`profiler.plugins`, loaded the first time a strategy is asked for); the loop never changes.

Example:
    >>> from acquisition.strategies import list_strategies
    >>> list_strategies()[:3]
    ['random', 'sobol', 'uncertainty']
"""

from acquisition.strategies import _base
from acquisition.strategies._base import (
    QueryContext,
    Strategy,
    StrategyError,
    register_strategy,
    top_k,
)
from acquisition.strategies.cost_aware import CostAwareStrategy
from acquisition.strategies.diverse import DiverseStrategy
from acquisition.strategies.error_driven import ErrorDrivenStrategy
from acquisition.strategies.random import RandomStrategy
from acquisition.strategies.representative import RepresentativeStrategy
from acquisition.strategies.space_filling import SpaceFilling
from acquisition.strategies.uncertainty import IntervalStrategy, UncertaintyStrategy

__all__ = ["CostAwareStrategy", "DiverseStrategy", "ErrorDrivenStrategy", "IntervalStrategy", "QueryContext",
           "RandomStrategy", "RepresentativeStrategy", "SpaceFilling", "Strategy", "StrategyError",
           "UncertaintyStrategy", "get_strategy", "list_strategies", "register_strategy", "top_k"]

# the package is imported once, before any of its modules is used: the built-ins register here
for _cls in (RandomStrategy, SpaceFilling, UncertaintyStrategy, IntervalStrategy, CostAwareStrategy,
             DiverseStrategy, ErrorDrivenStrategy, RepresentativeStrategy):
    register_strategy(_cls.name, _cls)


def _register_entry_point(name: str, obj: object) -> None:
    """An entry point's object is the factory (a :class:`Strategy` subclass or a function returning one),
    registered under the entry point's name unless its module already registered it."""
    if _base._REGISTRY.get(name) is obj:
        return
    register_strategy(name, obj)  # type: ignore[arg-type]


def _load_plugins() -> None:
    """Register the installed plug-in strategies (entry point group ``latency_acquisition.strategies``), once."""
    from profiler.plugins import GROUPS, load_entry_points

    load_entry_points(GROUPS["strategies"], _register_entry_point)


def get_strategy(name: str) -> Strategy:
    """A new instance of the strategy registered as ``name``; the error lists the available names."""
    _load_plugins()
    return _base.get_strategy(name)


def list_strategies() -> list[str]:
    """Names of the registered strategies, in registration order (installed plug-ins last)."""
    _load_plugins()
    return _base.list_strategies()
