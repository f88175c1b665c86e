"""A fleet's platform as one measurer: its actors (:class:`Slot`) and its queue of :class:`Job` s (:class:`Pool`).

A :class:`Pool` has the profiler's interface (``platform_id``, ``fingerprint``, ``device``, ``protocol``,
``measure``) plus :meth:`Pool.imap`; its fleet (:class:`profiler.fleet.dispatch.Fleet`) sends and receives.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from profiler.fleet.cluster import FleetError

if TYPE_CHECKING:
    from profiler.fleet.dispatch import Fleet
    from profiler.fleet.launch import ActorSpec

__all__ = ["Job", "Pool", "Slot"]


@dataclass(eq=False)
class Job:
    """One configuration to measure: in a pool's queue or in flight on one actor, never both."""

    family: Any
    config: dict[str, Any]
    protocol: Any = None  # None: the actor's own protocol
    owner: Any = None  # who receives the result (an imap call, a campaign)
    tag: Any = None  # the owner's reference (an index, an ask)
    requeued: int = 0


@dataclass(eq=False)
class Slot:
    """One started actor of a pool."""

    handle: Any
    spec: ActorSpec
    info: dict[str, Any]
    inflight: list[tuple[Any, Job]] = field(default_factory=list)  # (ref, job), in call order
    since: float = 0.0  # when the actor began its current job
    measurements: int = 0
    device_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    end_reason: str | None = None

    @property
    def label(self) -> str:
        return str(self.info.get("label"))


class Pool:
    """The actors of one platform: a measurer with the profiler's interface (see the module docstring)."""

    def __init__(self, fleet: Fleet, info: dict[str, Any]) -> None:
        self.fleet = fleet
        self.platform_id: str = info["platform"]
        self.fingerprint: dict[str, Any] = info["fingerprint"]
        self.device = SimpleNamespace(spec=info["device"])
        self.protocol: Any = SimpleNamespace(id=info["protocol"])
        self.supports_protocol: bool = info["supports_protocol"]
        self.slots: list[Slot] = []
        self.queue: deque[Job] = deque()
        self.replacements = 0
        self.max_replacements = 0

    def __repr__(self) -> str:
        return f"<pool {self.platform_id}: {len(self.slots)} {self.device.spec} actor(s), {len(self.queue)} queued>"

    @property
    def size(self) -> int:
        return len(self.slots)

    def measure(self, family: Any, config: dict[str, Any], protocol: Any = None) -> Any:
        """Measure one configuration on any actor of the pool."""
        for _, m in self.imap(family, [config], protocol):
            return m
        raise FleetError(f"platform {self.platform_id}: no measurement came back")  # pragma: no cover

    def imap(self, family: Any, configs: Sequence[dict[str, Any]], protocol: Any = None
             ) -> Iterator[tuple[int, Any]]:
        """Spread ``configs`` over the pool's actors; yield ``(index, measurement)`` as each arrives (any order).
        Configurations an actor held when it died are measured again elsewhere; each index is yielded once."""
        owner = object()
        for i, cfg in enumerate(configs):
            self.fleet.submit(self, Job(family, cfg, protocol, owner=owner, tag=i))
        left = len(configs)
        try:
            while left:
                for job, m in self.fleet.pump(1.0):
                    if job.owner is owner:
                        left -= 1
                        yield job.tag, m
                self.fleet.check_alive(self)
        finally:
            self.fleet.cancel(owner)
