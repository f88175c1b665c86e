"""Latency models and their registry.

Every model regresses log-latency and exposes ``fit``, ``predict`` and ``predict_dist`` (see
:mod:`surrogates.models._base`). Get one by name; register your own with :func:`register_model`, or through the
``latency_acquisition.models`` entry point of an installed package (:mod:`profiler.plugins`).

Example:
    >>> from surrogates.models import get_model, list_models
    >>> "ngboost" in list_models()
    True
    >>> get_model("rf", n_estimators=50)
    ForestRegressor(n_estimators=50)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogates._errors import ModelError
from surrogates.models._base import LatencyRegressor, LogLatencyDist, check_range
from surrogates.models.boosting import GBTRegressor, QuantileGBTRegressor
from surrogates.models.committee import CommitteeRegressor
from surrogates.models.forest import ForestRegressor
from surrogates.models.gp import GPRegressor
from surrogates.models.linear import ExpLinearRegressor
from surrogates.models.linear_tree import LinearTreeGBTRegressor
from surrogates.models.mlp import MLPLatencyRegressor
from surrogates.models.ngboost import NGBoostEnsembleRegressor, NGBoostRegressor

__all__ = [
    "DEFAULT_MODEL",
    "CommitteeRegressor",
    "ExpLinearRegressor",
    "ForestRegressor",
    "GBTRegressor",
    "GPRegressor",
    "LatencyRegressor",
    "LinearTreeGBTRegressor",
    "LogLatencyDist",
    "MLPLatencyRegressor",
    "ModelError",
    "NGBoostEnsembleRegressor",
    "NGBoostRegressor",
    "QuantileGBTRegressor",
    "check_range",
    "get_model",
    "list_models",
    "register_model",
]

DEFAULT_MODEL = "quantile-gbt"



_REGISTRY: dict[str, tuple[Callable[..., LatencyRegressor], str]] = {}


def register_model(name: str, factory: Callable[..., LatencyRegressor], description: str = "", *,
                   replace: bool = False) -> None:
    """Make ``factory`` (a :class:`LatencyRegressor` subclass or a function returning one) available by name."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ModelError(f"model name {name!r} must be a non-empty string without surrounding spaces")
    if name in _REGISTRY and not replace:
        raise ModelError(f"model {name!r} is already registered (pass replace=True to override)")
    if not callable(factory):
        raise ModelError(f"model {name!r}: factory {factory!r} is not callable")
    _REGISTRY[name] = (factory, description)


def _load_plugins() -> None:
    """Register the installed plug-in models (entry point group ``latency_acquisition.models``), once."""
    from profiler.plugins import GROUPS, load_entry_points

    load_entry_points(GROUPS["models"], _register_entry_point)


def _register_entry_point(name: str, obj: Any) -> None:
    """An entry point's object is the factory (a :class:`LatencyRegressor` subclass or a function returning one),
    registered under the entry point's name unless its module already registered it."""
    if name in _REGISTRY and _REGISTRY[name][0] is obj:
        return
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    register_model(name, obj, doc[0] if doc else "plug-in model")


def get_model(name: str, **params: Any) -> LatencyRegressor:
    """A new, unfitted model registered as ``name``, with ``params`` passed to its constructor."""
    _load_plugins()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}: available models are {', '.join(list_models())}")
    return _REGISTRY[name][0](**params)


def list_models() -> list[str]:
    """Names of the registered models, in registration order (installed plug-ins last)."""
    _load_plugins()
    return list(_REGISTRY)


def describe_models() -> dict[str, str]:
    """Each registered model's one-line description."""
    _load_plugins()
    return {k: v[1] for k, v in _REGISTRY.items()}


register_model("linear", ExpLinearRegressor, "exponentially-activated linear model (paper eq. 3)")
register_model("rf", ForestRegressor, "random forest; spread across trees + out-of-bag noise")
register_model("gbt", GBTRegressor, "gradient-boosted trees (paper's best); constant held-out std")
register_model("mlp", MLPLatencyRegressor, "dense torch network with early stopping; constant held-out std")
register_model("quantile-gbt", QuantileGBTRegressor, "quantile gradient-boosting ensemble (q 0.1/0.5/0.9)")
register_model("ngboost", NGBoostRegressor, "NGBoost, log-normal latency")
register_model("ngboost-ensemble", NGBoostEnsembleRegressor, "bootstrap ensemble of NGBoost models")
register_model("linear-gbt", LinearTreeGBTRegressor, "gradient boosting with linear leaves (LightGBM); constant "
               "held-out std")
register_model("gp", GPRegressor, "Gaussian process (ARD RBF + white noise), for a few hundred rows; posterior std; "
               "the transfer model's correction on few rows")
