"""Hardware in the loop: whole networks measured by the profiler, stored and charged like any block.

:func:`measure_networks` profiles networks as one module each (family ``network`` in the store, keyed by the
network's hash; :data:`nas.network.NETWORK`), reusing stored measurements, and returns their latencies.
:func:`space_blocks` lists the distinct blocks of random networks of a space, by family: profiling those
(`python -m nas blocks`) trains block predictors on the part of the block space that the search will ask about.

Example:
    >>> from nas.spaces import get_space
    >>> blocks = space_blocks(get_space("stacked-resv1"), 5, seed=0)
    >>> sorted(blocks), all(isinstance(c, dict) for c in blocks["resv1"])
    (['resv1'], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.network import NETWORK, Network
from nas.spaces import NetworkSpace

__all__ = ["measure_networks", "space_blocks"]


def measure_networks(store: Any, profiler: Any, networks: Sequence[Network], *, progress: bool = True,
                     activity: str = "nas_profile", statistic: str = "min_ms") -> np.ndarray:
    """Latency (ms, the protocol's ``statistic``) of each network, measured whole; NaN where it failed."""
    from acquisition.profiling import profile_configs

    specs = [n.identity() for n in networks]
    profile_configs(store, profiler, NETWORK, specs, activity=activity, progress=progress)
    keys = [n.key for n in networks]
    rows = store.find(profiler.platform_id, NETWORK.name, profiler.protocol.id, keys)
    return np.asarray([rows[k][statistic] if k in rows and rows[k]["status"] == "ok" else np.nan for k in keys],
                      dtype=float)


def space_blocks(space: NetworkSpace, n_networks: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Distinct block configurations of ``n_networks`` random networks of ``space``, by family."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    from profiler.families import get_family

    for net in space.sample(n_networks, seed=seed):
        for b in net.blocks:
            fam = get_family(b.family)
            out.setdefault(b.family, {})[fam.key(b.config)] = dict(b.config)
    return {f: list(d.values()) for f, d in out.items()}
