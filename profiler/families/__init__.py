"""Block families: built-in ``mbconv``, ``resv1``, ``resv2`` and the registry for user families."""

from profiler.families._base import (
    BlockFamily,
    Counts,
    FamilyError,
    get_family,
    list_families,
    module_counts,
    register_family,
)

__all__ = ["BlockFamily", "Counts", "FamilyError", "get_family", "list_families", "module_counts",
           "register_family"]

_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import the built-in family modules (they register themselves) once."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        from profiler.families import mbconv, resnet  # noqa: F401

        _BUILTINS_LOADED = True
