"""Query strategies: which configurations to profile next (DESIGN §5).

Each strategy lives in its own module and follows the contract of :mod:`acquisition.strategies._base`.
Add your own by subclassing :class:`Strategy` and calling :func:`register_strategy`; the loop never changes.

Example:
    >>> from acquisition.strategies import list_strategies
    >>> list_strategies()[:3]
    ['random', 'sobol', 'uncertainty']
"""

from acquisition.strategies._base import (
    QueryContext,
    Strategy,
    StrategyError,
    get_strategy,
    list_strategies,
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
