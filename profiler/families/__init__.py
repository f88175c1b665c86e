"""Block families: built-in ``mbconv``, ``mbconvx``, ``resv1``, ``resv1x``, ``resv2``, ``convbn``, and the
registry for user families.

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
    trace_seconds,
)

__all__ = ["BlockFamily", "Counts", "FamilyError", "get_family", "list_families", "meta_counts", "module_counts",
           "register_family", "trace_seconds"]

# the built-in families register themselves when imported: here, before any other module of the package is used
from profiler.families import convbn, mbconv, mbconvx, resnet, resnext  # noqa: F401  (after _base: they import from it)
