"""The noise ceiling: stored measurements measured again in a fresh process, and how often they agree.

No model can be trusted to predict a measurement more closely than the measurement repeats itself. To know
that ceiling, :func:`remeasure` draws stored ok measurements of a family (at random, seeded), measures each again
with the same protocol in a **fresh worker process** (a new :class:`profiler.worker.Profiler`), and stores the
result as a *repeat* of the measurement (table ``repeats``; the measurement itself is never changed). Its device
time is charged to the ledger as ``noise_profile``, a profiling activity like any other.

:func:`noise_ceiling` then compares each repeat with its measurement: the share of configurations that agree
within ±10 % (``within``, the ceiling of a model's ±10 % accuracy on those rows), the median and worst relative
difference, and Spearman's ρ between the two runs. ``fit``, ``run``, reports and studies print it beside the
model's own ±10 % accuracy, so a user sees how much of the error is the model's.

Example:
    >>> import os, tempfile
    >>> from acquisition.store import Store
    >>> with Store(os.path.join(tempfile.mkdtemp(), "a.sqlite")) as store:
    ...     noise_ceiling(store, "mbconv") is None   # nothing re-measured yet
    True
"""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
from tqdm import tqdm

from acquisition.store import Store, fault_point
from profiler.repeatability import NoiseCeiling, NoiseError, ceiling_of

__all__ = ["NoiseCeiling", "NoiseError", "noise_ceiling", "protocol_from_id", "remeasure"]

STATISTIC = "min_ms"


def noise_ceiling(store: Store, family: str, *, platform: str | None = None, protocol: str | None = None,
                  keys: Any = None) -> NoiseCeiling | None:
    """The noise ceiling of ``family``'s stored repeats (None when there are none).

    With several repeats of one measurement the first is used. ``keys`` restricts it to those configurations
    (e.g. a test split); ``platform`` / ``protocol`` to one platform and protocol.
    """
    rows = store.repeats(family=family, platform=platform, protocol=protocol)
    wanted = None if keys is None else set(keys)
    seen: set[int] = set()
    first, second = [], []
    for r in rows:
        if r["measurement_id"] in seen or (wanted is not None and r["key"] not in wanted):
            continue
        if not (r["first_min_ms"] and r["min_ms"]):
            continue
        seen.add(r["measurement_id"])
        first.append(r["first_" + STATISTIC])
        second.append(r[STATISTIC])
    return ceiling_of(np.asarray(first), np.asarray(second)) if first else None


def protocol_from_id(protocol_id: str) -> Any:
    """The measurement protocol a stored protocol id names (the profiler's and the engine's cheap one)."""
    from acquisition.fidelity import CHEAP_PROTOCOL
    from profiler.protocol import AdaptiveProtocol, FixedProtocol

    known = {p.id: p for p in (AdaptiveProtocol(), CHEAP_PROTOCOL)}
    if protocol_id in known:
        return known[protocol_id]
    m = re.fullmatch(r"fixed-n(\d+)-v\d+", protocol_id)
    if m and FixedProtocol(repeats=int(m.group(1))).id == protocol_id:
        return FixedProtocol(repeats=int(m.group(1)))
    raise NoiseError(f"protocol {protocol_id!r} is not one this version can measure with "
                     f"(known: {', '.join(known)}, fixed-nN-v1)")


def remeasure(store: Store, device: Any, family: Any, n: int, *, seed: int = 0, platform: str | None = None,
              protocol: str | None = None, progress: bool = True, profiler_factory: Any = None) -> NoiseCeiling:
    """Measure ``n`` stored ok measurements of ``family`` again in a fresh worker; see the module docstring.

    Measurements are drawn at random (``seed``) among those of the platform and protocol without a repeat yet;
    fewer than ``n`` are re-measured when fewer are left. ``device`` is a :class:`profiler.devices.Device`
    (its platform must be the stored one). Returns the ceiling over every repeat of those rows' platform and
    protocol, this call's included.
    """
    from acquisition.dataset import load_dataset
    from profiler.worker import Profiler

    if not isinstance(n, int) or n < 1:
        raise NoiseError(f"n={n!r} is not allowed: expected an integer >= 1")
    ds = load_dataset(store, family.name, platform=platform, protocol=protocol)
    rows = {r["key"]: r for r in store.measurements(family=family.name, platform=ds.platform, status="ok")
            if r["protocol"] == ds.protocol}
    done = {r["measurement_id"] for r in store.repeats(family=family.name, platform=ds.platform,
                                                      protocol=ds.protocol)}
    todo = sorted(k for k, r in rows.items() if r["id"] not in done)
    if not todo:
        raise NoiseError(f"every stored {family.name} measurement on platform {ds.platform} ({ds.protocol}) "
                         "already has a repeat")
    pick = [todo[i] for i in np.random.default_rng(seed).permutation(len(todo))[:n]]
    if profiler_factory is None:
        profiler_factory, proto = Profiler, protocol_from_id(ds.protocol)
    else:  # tests: a stand-in profiler that takes the protocol id
        proto = ds.protocol
    with profiler_factory(device, proto) as prof:  # a new worker: a fresh process
        if prof.platform_id != ds.platform:
            raise NoiseError(f"this device is platform {prof.platform_id}, the stored measurements are of "
                             f"{ds.platform}: re-measure them on the machine and settings that made them")
        bar = tqdm(pick, desc=f"re-measure {family.name}", unit="block", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True, mininterval=0.5)
        for key in bar:
            m = prof.measure(family, rows[key]["config"])
            fault_point("remeasure")
            store.record_repeat(m, rows[key]["id"])
    ceiling = noise_ceiling(store, family.name, platform=ds.platform, protocol=ds.protocol)
    if ceiling is None:
        raise NoiseError(f"none of the {len(pick)} re-measured {family.name} blocks measured ok")
    return ceiling
