"""Faults on a fleet: an actor that died or stopped answering, and a platform with no device left.

Contract of :class:`Faults` (a part of :class:`profiler.fleet.dispatch.Fleet`): every configuration is in exactly
one place, a pool's queue or in flight on one actor. When an actor is lost, the jobs it held go back to the front
of its pool's queue in order (unless their owner was cancelled), the device time it spent on the unfinished one is
reported through ``on_lost``, and one replacement is requested (at most as many as the pool started with).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from profiler.fleet.cluster import FleetError

if TYPE_CHECKING:
    from collections.abc import Callable

    from profiler.fleet.launch import ActorSpec
    from profiler.fleet.pool import Job, Pool, Slot

__all__ = ["Faults"]

log = logging.getLogger("latency_profiler.fleet")


class Faults:
    """Losing, retiring and replacing actors (see the module docstring for the contract)."""

    _ray: Any
    replace: bool
    retired: list[Slot]
    lost_jobs: int
    lost_s: float
    job_timeout_s: float | None
    on_lost: Callable[[Pool, Job, float, str], None] | None
    pools: dict[str, Pool]
    _starting: dict[Any, tuple[Any, ActorSpec, Pool | None, float]]

    def _launch(self, spec: ActorSpec, pool: Pool | None, soft: bool = False) -> None:
        raise NotImplementedError  # Launching's

    def _dropped(self, owner: Any) -> bool:
        raise NotImplementedError  # the dispatch's

    def _replace(self, pool: Pool, slot: Slot) -> None:
        if not self.replace or pool.replacements >= pool.max_replacements:
            return
        pool.replacements += 1
        self._launch(slot.spec, pool, soft=True)  # its node may be gone: Ray may place it elsewhere

    def _lose(self, pool: Pool, slot: Slot, reason: str) -> None:
        """``slot``'s actor is gone: its jobs go back to the front of the queue (in order), the time it spent on
        the unfinished one is reported, a replacement is requested."""
        if slot not in pool.slots:
            return
        pool.slots.remove(slot)
        jobs = [j for _, j in slot.inflight]
        lost_s = max(0.0, time.perf_counter() - slot.since) if jobs else 0.0
        log.warning("actor %s of platform %s lost (%s): %d configuration(s) back in the queue", slot.label,
                    pool.platform_id, reason, len(jobs))
        for j in reversed(jobs):
            j.requeued += 1
            if not self._dropped(j.owner):
                pool.queue.appendleft(j)
        self.lost_jobs += len(jobs)
        if jobs and lost_s > 0:
            self.lost_s += lost_s
            if self.on_lost is not None and not self._dropped(jobs[0].owner):
                self.on_lost(pool, jobs[0], lost_s, f"actor {slot.label} lost: {reason}")
        slot.inflight.clear()
        with contextlib.suppress(Exception):
            self._ray.kill(slot.handle)
        self._retire(slot, reason)
        self._replace(pool, slot)

    def _retire(self, slot: Slot, reason: str) -> None:
        slot.ended = time.perf_counter()
        slot.end_reason = reason
        self.retired.append(slot)

    def _check_deadlines(self) -> None:
        now = time.perf_counter()
        for pool in list(self.pools.values()):
            for slot in list(pool.slots):
                limit = self.job_timeout_s or slot.spec.job_timeout()
                if slot.inflight and now - slot.since > limit:
                    self._lose(pool, slot, f"no answer after {now - slot.since:.0f} s (actor killed)")

    def check_alive(self, pool: Pool) -> None:
        """:class:`FleetError` when ``pool`` has work but no actor and no replacement on its way."""
        if pool.slots or not pool.queue:
            return
        if any(p is pool for _h, _s, p, _t in self._starting.values()):
            return
        ends = [s.end_reason for s in self.retired if s.info["platform"] == pool.platform_id]
        raise FleetError(f"platform {pool.platform_id} has no device left ({len(pool.queue)} configuration(s) "
                         f"not measured; last: {ends[-1] if ends else 'none started'}): start more devices, then "
                         "run again to resume")
