"""Measuring asks with the built-in measurer (what ``run`` does between the loop's steps).

Contract: :func:`measure_asks` measures each ask with ``profiler`` (with the cheap protocol when it was asked at
the cheap fidelity) and calls ``tell(ask, measurement)`` as each result arrives, so a kill loses at most the block
being measured; a failed measurement is told like any other (the store records why).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from acquisition._schema import fault_point
from acquisition.loop.base import Asked

__all__ = ["measure_asks"]


def measure_asks(profiler: Any, family: Any, asks: Sequence[Asked], tell: Callable[[Asked, Any], Any],
                 cheap_protocol: Any = None, progress: bool = False) -> None:
    """Measure ``asks`` one by one and tell each result (see the module docstring); ``progress``: a tqdm bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(asks), desc=f"profile {family.name}", unit="block", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    failed = 0
    try:
        for a in asks:
            cheap = cheap_protocol is not None and a.protocol == cheap_protocol.id
            m = profiler.measure(family, a.config, cheap_protocol) if cheap else profiler.measure(family, a.config)
            fault_point("profile")
            tell(a, m)
            failed += not m.ok
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
    finally:
        bar.close()
