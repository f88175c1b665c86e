"""Block families: built-in ``mbconv``, ``resv1``, ``resv2`` and the registry for user families.

User families register with :func:`register_family` (a module imported with ``--plugin``) or through the
``latency_acquisition.families`` entry point of an installed package (:mod:`profiler.plugins`), which the
registry loads the first time it is asked for a family.
"""

from profiler.families._base import (
    BlockFamily,
    Counts,
    FamilyError,
    get_family,
    list_families,
    meta_counts,
    module_counts,
    register_family,
)

__all__ = ["BlockFamily", "Counts", "FamilyError", "get_family", "list_families", "meta_counts", "module_counts",
           "register_family"]

_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import the built-in family modules (they register themselves), then the installed plug-ins, once."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        from profiler.families import mbconv, resnet  # noqa: F401

        _BUILTINS_LOADED = True
    from profiler.plugins import GROUPS, load_entry_points

    load_entry_points(GROUPS["families"], _register_entry_point)  # once per process (a no-op after the first)


def _register_entry_point(name: str, obj: object) -> None:
    """An entry point's object: a :class:`BlockFamily` instance, or a subclass (instantiated without arguments)."""
    from profiler.families._base import _REGISTRY

    family = obj() if isinstance(obj, type) and issubclass(obj, BlockFamily) else obj
    if not isinstance(family, BlockFamily):
        raise FamilyError(f"expected a BlockFamily subclass or instance, got {type(obj).__name__}")
    if _REGISTRY.get(family.name) is not None and type(_REGISTRY[family.name]) is type(family):
        return  # its module registered it when imported
    register_family(family)
