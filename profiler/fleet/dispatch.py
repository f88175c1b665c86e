"""Dispatch on a fleet: jobs spread over each platform's actors (:class:`~profiler.fleet.pool.Pool`) by the
:class:`Fleet` that starts them (:class:`~profiler.fleet.launch.Launching`), sends and receives
(:meth:`Fleet.pump`) and handles faults (:class:`~profiler.fleet.faults.Faults`).

Contract of dispatch: a :class:`Job` is queued on its pool (:meth:`Fleet.submit`), sent to the actor with the
fewest calls in flight (at most ``depth`` each; one per actor first), and handed back with its measurement by
the :meth:`Fleet.pump` call that receives it, once. A cancelled owner's queued jobs are dropped and its results
in flight discarded when they arrive.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from profiler.fleet.cluster import FleetError, first_line, require_ray
from profiler.fleet.faults import Faults
from profiler.fleet.launch import ActorSpec, Launching
from profiler.fleet.pool import Job, Pool, Slot

__all__ = ["Fleet"]


class Fleet(Launching, Faults):
    """Device actors on the connected Ray cluster, pooled by platform (see the module docstring).

    ``depth``: calls in flight per actor (2: the next block waits on the actor while the coordinator stores the
    last). ``replace``: request a replacement for an actor that died. ``on_lost(pool, job, seconds, reason)``:
    called with the device time a dead actor spent on its unfinished block (the coordinator charges it).
    """

    def __init__(self, specs: Sequence[ActorSpec], *, depth: int = 2, replace: bool = True,
                 start_timeout_s: float = 180.0, job_timeout_s: float | None = None,
                 on_lost: Callable[[Pool, Job, float, str], None] | None = None) -> None:
        if not specs:
            raise ValueError("specs must name at least one actor")
        if int(depth) < 1:
            raise ValueError(f"depth={depth!r} must be >= 1")
        if not start_timeout_s > 0:
            raise ValueError(f"start_timeout_s={start_timeout_s!r} must be > 0")
        if job_timeout_s is not None and not job_timeout_s > 0:
            raise ValueError(f"job_timeout_s={job_timeout_s!r} must be > 0")
        self.specs = list(specs)
        self.depth = int(depth)
        self.replace = replace
        self.start_timeout_s = float(start_timeout_s)
        self.job_timeout_s = job_timeout_s
        self.on_lost = on_lost
        self.pools: dict[str, Pool] = {}
        self.retired: list[Slot] = []
        self.failed_starts: list[str] = []
        self.lost_jobs = 0  # jobs that went back to a queue because their actor died
        self.lost_s = 0.0
        self._starting: dict[Any, tuple[Any, ActorSpec, Pool | None, float]] = {}  # describe ref -> ...
        self._family_refs: dict[int, Any] = {}
        self._cancelled: list[Any] = []  # owners whose results are dropped (kept alive: compared by identity)
        self._t0 = time.perf_counter()
        self._ray: Any = None
        self._started = False
        self._launched = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> Fleet:
        """Start every actor and pool them by platform; :class:`FleetError` when none starts."""
        if self._started:
            return self
        self._ray = require_ray()
        if not self._ray.is_initialized():
            raise FleetError("not connected to Ray: call profiler.fleet.connect(address) first")
        self._started = True
        self._t0 = time.perf_counter()
        for spec in self.specs:
            self._launch(spec, None)
        deadline = time.perf_counter() + self.start_timeout_s
        while self._starting and time.perf_counter() < deadline:
            self._poll_starting(min(1.0, max(0.0, deadline - time.perf_counter())))
        for ref in list(self._starting):
            self._give_up_start(ref, f"not placed within {self.start_timeout_s:.0f} s (the cluster lacks the "
                                     "resources it asks for?)")
        for pool in self.pools.values():
            pool.max_replacements = len(pool.slots) if self.replace else 0
        if not self.pools:
            raise FleetError("no device actor started: " + "; ".join(self.failed_starts[:3]))
        return self

    def close(self) -> None:
        """End every actor (their device workers stop with them)."""
        if self._ray is None:
            return
        slots = [slot for pool in self.pools.values() for slot in pool.slots]
        closing = []
        for slot in slots:  # stop every device worker (all at once), then end the actors: their resources
            with contextlib.suppress(Exception):  # (a GPU, a node's CPUs) are free for the next fleet at once
                closing.append(slot.handle.close.remote())
        with contextlib.suppress(Exception):
            self._ray.wait(closing, num_returns=len(closing), timeout=10)
        for slot in slots:
            with contextlib.suppress(Exception):
                self._ray.kill(slot.handle, no_restart=True)
            self._retire(slot, "closed")
        for pool in self.pools.values():
            pool.slots.clear()
        for ref, (handle, *_rest) in list(self._starting.items()):
            with contextlib.suppress(Exception):
                self._ray.kill(handle)
            self._starting.pop(ref, None)

    def pool(self, platform: str | None = None) -> Pool:
        """The pool of ``platform`` (or the only one)."""
        if platform is None:
            if len(self.pools) != 1:
                raise FleetError(f"the fleet holds {len(self.pools)} platforms: name one of "
                                 f"{', '.join(self.pools)}")
            return next(iter(self.pools.values()))
        if platform not in self.pools:
            raise FleetError(f"platform {platform!r} is not in the fleet: it holds {', '.join(self.pools)}")
        return self.pools[platform]

    # -- dispatch -------------------------------------------------------------------------------------------
    def submit(self, pool: Pool, job: Job) -> None:
        """Queue ``job`` on ``pool`` (sent to an actor by the next :meth:`pump`)."""
        pool.queue.append(job)

    def dispatch(self) -> None:
        """Send queued jobs to free actors now (up to ``depth`` each), without waiting for results: before the
        coordinator thinks (a pipelined campaign's fit), so that the actors have work meanwhile."""
        self._fill()

    def unqueue(self, owner: Any) -> list[Job]:
        """Take ``owner``'s jobs not sent to an actor yet out of the queues and return them; its jobs in flight
        go on and their results come back (a pipelined campaign that stopped keeps what it paid for)."""
        out: list[Job] = []
        for pool in self.pools.values():
            out += [j for j in pool.queue if j.owner is owner]
            pool.queue = deque(j for j in pool.queue if j.owner is not owner)
        return out

    def cancel(self, owner: Any) -> None:
        """Drop ``owner``'s queued jobs; results of its jobs in flight are dropped when they arrive."""
        for pool in self.pools.values():
            pool.queue = deque(j for j in pool.queue if j.owner is not owner)
            if any(j.owner is owner for s in pool.slots for _, j in s.inflight) and not self._dropped(owner):
                self._cancelled.append(owner)

    def _family_ref(self, family: Any) -> Any:
        ref = self._family_refs.get(id(family))
        if ref is None:
            ref = self._family_refs[id(family)] = (family, self._ray.put(family))
        return ref[1]

    def _send(self, slot: Slot, job: Job) -> None:
        fam = self._family_ref(job.family)
        ref = slot.handle.measure.remote(fam, job.config, job.protocol)
        if not slot.inflight:
            slot.since = time.perf_counter()
        slot.inflight.append((ref, job))

    def _fill(self) -> None:
        for pool in self.pools.values():
            for d in range(1, self.depth + 1):  # spread first: one job per actor, then a second each, ...
                for slot in pool.slots:
                    if not pool.queue:
                        break
                    if len(slot.inflight) < d:
                        self._send(slot, pool.queue.popleft())

    def pump(self, timeout: float = 1.0) -> list[tuple[Job, Any]]:
        """Send queued jobs to free actors, wait up to ``timeout`` s for results, handle dead or hung actors and
        arriving replacements; return the ``(job, measurement)`` pairs that arrived."""
        self._fill()
        where = {ref: (pool, slot) for pool in self.pools.values() for slot in pool.slots
                 for ref, _ in slot.inflight}
        refs = list(where) + list(self._starting)
        out: list[tuple[Job, Any]] = []
        if refs:
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
            if ready:
                ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                if ref in where:
                    pool, slot = where[ref]
                    if slot in pool.slots:
                        out.extend(self._arrived(pool, slot, ref))
            if any(r in self._starting for r in ready):
                self._poll_starting(0)
        self._check_deadlines()
        self._expire_starts()
        self._fill()
        if self._cancelled:
            out = [(job, m) for job, m in out if not self._dropped(job.owner)]
            flying = [j.owner for p in self.pools.values() for s in p.slots for _, j in s.inflight]
            self._cancelled = [c for c in self._cancelled if any(c is o for o in flying)]  # the rest is done
        return out

    def _dropped(self, owner: Any) -> bool:
        return any(owner is c for c in self._cancelled)

    def _arrived(self, pool: Pool, slot: Slot, ref: Any) -> list[tuple[Job, Any]]:
        idx = next(i for i, (r, _) in enumerate(slot.inflight) if r == ref)
        try:
            m = self._ray.get(ref)
        except Exception as e:
            from profiler.worker import ProfilerError

            if isinstance(e, (self._ray.exceptions.RayActorError, ProfilerError)):
                self._lose(pool, slot, first_line(e))
                return []
            raise FleetError(f"actor {slot.label} failed on {slot.inflight[idx][1].config}: {first_line(e)}") \
                from None
        _, job = slot.inflight.pop(idx)
        now = time.perf_counter()
        slot.since = now
        slot.measurements += 1
        slot.device_s += float(getattr(m, "cost_s", 0.0) or 0.0)
        return [(job, m)]

    # -- figures --------------------------------------------------------------------------------------------
    def throughput(self) -> list[dict[str, Any]]:
        """One row per actor (current and retired): measurements, device seconds, measurements per minute of
        the time it was in the fleet."""
        now = time.perf_counter()
        rows = []
        for slot in itertools.chain((s for p in self.pools.values() for s in p.slots), self.retired):
            wall = max(1e-9, (slot.ended or now) - slot.started)
            rows.append({"actor": slot.label, "platform": slot.info["platform"], "host": slot.info["host"],
                         "measurements": slot.measurements, "device_s": slot.device_s,
                         "per_min": 60.0 * slot.measurements / wall, "alive": slot.ended is None,
                         "end": slot.end_reason})
        return rows

    def postfix(self, limit: int = 6) -> str:
        """Per-device throughput for a progress bar: ``label n/min`` for each live actor."""
        rows = [r for r in self.throughput() if r["alive"]]
        parts = [f"{r['actor']} {r['per_min']:.0f}/min" for r in rows[:limit]]
        if len(rows) > limit:
            parts.append(f"+{len(rows) - limit} more")
        return ", ".join(parts)
