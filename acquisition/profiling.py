"""Profile configurations into the store: reuse what is stored, measure the rest, charge the ledger.

This is the coordinator side of profiling (the only database writer): the worker process measures, the
coordinator records each result and its cost in one transaction as soon as it arrives, so an interrupted run
loses at most the block being measured.

Example:
    >>> import tempfile, os
    >>> from acquisition.store import Store, fault_point
    >>> from profiler.families import get_family
    >>> from profiler.protocol import AdaptiveProtocol
    >>> from profiler.worker import Profiler
    >>> fam = get_family("resv1")
    >>> configs = fam.space.sample(2, method="sobol", seed=0)
    >>> with Store(os.path.join(tempfile.mkdtemp(), "a.sqlite")) as store, \\
    ...         Profiler("cpu", AdaptiveProtocol(min_seconds=0.02, max_seconds=0.5)) as prof:
    ...     first = profile_configs(store, prof, fam, configs, progress=False)
    ...     again = profile_configs(store, prof, fam, configs, progress=False)
    >>> first.profiled, again.reused
    (2, 2)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from acquisition.store import Store, fault_point

__all__ = ["ProfileSummary", "plan_profile", "profile_configs", "record_profiled"]

log = logging.getLogger("latency_acquisition.acquisition")


@dataclass
class ProfileSummary:
    """What one profiling call did."""

    platform: str
    requested: int = 0
    reused: int = 0
    profiled: int = 0
    failed: int = 0
    unstable: int = 0
    noisy: int = 0  # ok measurements whose placements still disagree by more than the protocol's max_noise
    extra_placements: int = 0  # ok measurements that needed placements beyond the protocol's first ones
    noise: list[float] = field(default_factory=list)  # each ok measurement's own noise estimate
    cost_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    keys: list[str] = field(default_factory=list)
    error: str | None = None  # why it stopped short (a fleet platform that lost every device)


def profile_configs(store: Store, profiler: Any, family: Any, configs: Sequence[dict[str, Any]], *,
                    activity: str = "profile", campaign: str | None = None, role: str | None = None,
                    retry_failed: bool = False, progress: bool = True,
                    drawn: str | Sequence[str | None] | None = None, protocol: Any = None) -> ProfileSummary:
    """Make sure every config has a stored measurement on ``profiler``'s platform and protocol.

    Configs already stored are reused (failed ones too, unless ``retry_failed``); the others are measured one by
    one (spread over a fleet's devices when ``profiler`` is a :class:`profiler.fleet.Pool`) and each result is
    recorded with its ledger row at once. With ``campaign`` and ``role`` every config
    joins the campaign: a reused measurement is attached at no cost, a new one in its own transaction.
    ``drawn`` says how each config was chosen (one label for all, or one per config; see
    :mod:`acquisition._campaign_store`). ``protocol`` measures (and looks up stored rows) with another protocol
    than the profiler's own (the engine's cheap fidelity; needs ``profiler.supports_protocol``). Returns a
    :class:`ProfileSummary`.
    """
    summary, todo = plan_profile(store, profiler, family, configs, campaign=campaign, role=role,
                                 retry_failed=retry_failed, drawn=drawn, protocol=protocol)
    bar = tqdm(total=len(todo), desc=f"profile {family.name}", unit="block", disable=not progress or not todo,
               file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    try:
        for _cfg, key, d, m in _measured(profiler, family, todo, protocol):
            fault_point("profile")
            record_profiled(store, summary, m, key, d, activity=activity, campaign=campaign, role=role,
                            protocol=protocol or profiler.protocol)
            bar.update(1)
            bar.set_postfix(failed=summary.failed, unstable=summary.unstable, noisy=summary.noisy, refresh=False)
    finally:
        bar.close()
    return summary


def plan_profile(store: Store, profiler: Any, family: Any, configs: Sequence[dict[str, Any]], *,
                 campaign: str | None = None, role: str | None = None, retry_failed: bool = False,
                 drawn: str | Sequence[str | None] | None = None, protocol: Any = None
                 ) -> tuple[ProfileSummary, list[tuple[dict[str, Any], str, Any]]]:
    """The first half of :func:`profile_configs`: validate, reuse what is stored (attaching it to the campaign)
    and return the summary so far with the ``(config, key, drawn)`` still to measure."""
    cfgs = [family.validate(c) for c in configs]
    how = [drawn] * len(cfgs) if drawn is None or isinstance(drawn, str) else list(drawn)
    if len(how) != len(cfgs):
        raise ValueError(f"drawn has {len(how)} labels for {len(cfgs)} configurations")
    keys = [family.key(c) for c in cfgs]
    platform = profiler.platform_id
    store.ensure_platform(platform, profiler.fingerprint, profiler.device.spec)
    summary = ProfileSummary(platform=platform, requested=len(cfgs), keys=keys)
    if protocol is not None and not getattr(profiler, "supports_protocol", False):
        raise ValueError(f"this profiler ({type(profiler).__name__}) cannot measure with another protocol")
    proto_id = (protocol or profiler.protocol).id
    stored = store.find(platform, family.name, proto_id, keys)
    todo, seen, reused_ids = [], set(), {}
    for cfg, key, d in zip(cfgs, keys, how, strict=True):
        row = stored.get(key)
        if key in seen or (row is not None and (row["status"] == "ok" or not retry_failed)):
            summary.reused += 1
            if row is not None:
                reused_ids.setdefault(d, []).append(row["id"])
            continue
        seen.add(key)
        todo.append((cfg, key, d))
    if campaign is not None and role is not None:
        for d, ids in reused_ids.items():
            store.add_members(campaign, ids, role, drawn=d)
    return summary, todo


def record_profiled(store: Store, summary: ProfileSummary, m: Any, key: str, drawn: Any, *,
                    activity: str = "profile", campaign: str | None = None, role: str | None = None,
                    protocol: Any = None) -> None:
    """The second half of :func:`profile_configs`, per arriving measurement: store it with its ledger row (one
    transaction) and count it in ``summary``."""
    store.record(m, activity=activity, campaign=campaign, role=role, drawn=drawn)
    summary.profiled += 1
    summary.cost_s += m.cost_s
    if not m.ok:
        summary.failed += 1
        summary.failures.append((key, m.reason or ""))
    else:
        summary.unstable += not m.stable
        _count_noise(summary, m, protocol)


def _measured(profiler: Any, family: Any, todo: list[tuple[dict[str, Any], str, Any]], protocol: Any
              ) -> Iterator[tuple[dict[str, Any], str, Any, Any]]:
    """Each todo item with its measurement, as it arrives: one by one, or spread over a fleet's devices when
    ``profiler`` offers ``imap`` (:class:`profiler.fleet.Pool`)."""
    if callable(getattr(profiler, "imap", None)):
        for i, m in profiler.imap(family, [cfg for cfg, _, _ in todo], protocol):
            yield (*todo[i], m)
        return
    for cfg, key, d in todo:
        m = profiler.measure(family, cfg) if protocol is None else profiler.measure(family, cfg, protocol)
        yield cfg, key, d, m


def _count_noise(summary: ProfileSummary, m: Any, protocol: Any) -> None:
    """Count an ok measurement's noise: its estimate, extra placements, and whether it stayed above the limit."""
    t = m.timing
    noise = getattr(t, "noise", None)
    if noise is None:
        return
    summary.noise.append(float(noise))
    if getattr(t, "placements", 0) > getattr(protocol, "placements", 1):
        summary.extra_placements += 1
    limit = getattr(protocol, "max_noise", None)
    if limit is not None and noise > limit:
        summary.noisy += 1
