"""Installed plug-ins: block families, models and strategies registered through package entry points.

A package registers its plug-ins in its ``pyproject.toml``; every command then finds them without ``--plugin``:

.. code-block:: toml

    [project.entry-points."latency_acquisition.families"]
    sepconv = "my_blocks:SepConv"           # a BlockFamily subclass or instance, or a module that registers it
    [project.entry-points."latency_acquisition.models"]
    my-model = "my_models:MyRegressor"      # a LatencyRegressor subclass or factory, registered as "my-model"
    [project.entry-points."latency_acquisition.strategies"]
    fast-first = "my_strategy:FastFirst"    # a Strategy subclass or factory, registered as "fast-first"
    [project.entry-points."latency_acquisition.stop_rules"]
    two-sided = "my_rules:TwoSided"         # a stop rule (class or instance: acquisition.stopping's contract)

Each registry loads its group the first time it is asked for a name or the list of names, once per process. An
entry point whose module cannot be imported, or whose object cannot be registered, costs one line of warning
naming it (logger ``latency_acquisition.plugins``), never the command.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["GROUPS", "load_entry_points", "loaded_groups"]

GROUPS = {"families": "latency_acquisition.families", "models": "latency_acquisition.models",
          "strategies": "latency_acquisition.strategies", "stop_rules": "latency_acquisition.stop_rules"}

log = logging.getLogger("latency_acquisition.plugins")
_LOADED: set[str] = set()
_LOCK = threading.RLock()


def loaded_groups() -> set[str]:
    """The entry-point groups already loaded in this process."""
    return set(_LOADED)


def load_entry_points(group: str, register: Callable[[str, Any], None]) -> list[str]:
    """Load every entry point of ``group`` once per process and pass each loaded object that is not a module to
    ``register(entry_point_name, obj)``; returns the names of the entry points loaded this time (none after the
    first call). A broken one is a one-line warning naming it."""
    with _LOCK:
        if group in _LOADED:
            return []
        _LOADED.add(group)  # before loading: a plug-in that asks the registry while it is imported does not recurse
        try:
            from importlib.metadata import entry_points

            eps = list(entry_points(group=group))
        except Exception as exc:  # a broken installation must not break every command
            log.warning("plug-ins of group %s could not be listed: %s: %s", group, type(exc).__name__, exc)
            return []
        done = []
        seen: set[str] = set()
        for ep in sorted(eps, key=lambda e: e.name):
            if ep.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep.name)
            try:
                obj = ep.load()
                if not isinstance(obj, types.ModuleType):  # a module registers what it defines when imported
                    register(ep.name, obj)
            except Exception as exc:
                msg = " ".join(str(exc).split())
                log.warning("plug-in %r (%s = %s) was not loaded: %s: %s", ep.name, group, ep.value,
                            type(exc).__name__, msg)
                continue
            done.append(ep.name)
        return done
