"""Launching a fleet's device actors: what to start on a cluster (:func:`device_actor_specs`), how one is
started (:class:`ActorSpec`), and the fleet's part that starts, joins and gives up on actors (:class:`Launching`).

Contract of :class:`Launching` (a part of :class:`profiler.fleet.dispatch.Fleet`): it reads the fleet's ``_ray``,
``pools``, ``start_timeout_s`` and ``failed_starts``, and keeps the actors on their way in ``_starting``
(``describe`` ref -> handle, spec, the pool it replaces an actor of or None, start time). An actor that answers
``describe`` joins the pool of its platform (a new pool for a new platform); a replacement that reports another
platform or protocol, or one not placed in time, is killed and named in ``failed_starts``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from profiler.fleet.cluster import FleetError, first_line, require_ray
from profiler.fleet.pool import Pool, Slot

__all__ = ["ActorSpec", "Launching", "device_actor_specs"]

log = logging.getLogger("latency_profiler.fleet")


@dataclass(frozen=True)
class ActorSpec:
    """How to start one device actor: what it measures and the resources it reserves.

    ``target``: a :class:`~profiler.devices.Device` or a recorded measurer (:class:`studies.replay.ReplayOracle`);
    ``node``: a Ray node id the actor must run on (a CPU device: that machine's CPU). The other fields go to
    :class:`profiler.actor.DeviceActor`.
    """

    target: Any
    protocol: Any = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    node: str | None = None
    realtime: bool = True
    timeout_s: float | None = None
    max_attempts: int = 2
    plugins: tuple[str, ...] = ()
    label: str | None = None

    def options(self, *, soft: bool = False) -> dict[str, Any]:
        """The ``.options()`` of the Ray actor (no automatic restart: the coordinator replaces actors itself,
        after checking the replacement's platform)."""
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_restarts": 0,
                                "max_task_retries": 0}
        if self.node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.node, soft=soft)
        return opts

    def job_timeout(self) -> float:
        """Seconds without an answer after which the actor counts as hung: a live device's block timeout for
        every attempt, plus a margin for a fresh worker; ten minutes for a recorded measurer."""
        from profiler.devices import Device

        if not isinstance(self.target, Device):
            return 600.0
        from profiler.protocol import AdaptiveProtocol

        per_try = self.timeout_s or (self.protocol or AdaptiveProtocol()).suggested_timeout()
        return per_try * self.max_attempts + 180.0


def device_actor_specs(device: Any, *, actors: int | None = None, protocol: Any = None,
                       timeout_s: float | None = None, plugins: Sequence[str] = ()) -> list[ActorSpec]:
    """The actors to start for ``device`` on the connected cluster.

    A GPU (``cuda``): one actor per GPU of the cluster (``num_gpus=1``; Ray gives each its own GPU, which the
    actor sees as ``cuda:0``), at most ``actors``. The CPU: one actor per alive node, pinned to it and reserving
    the device's threads; ``actors`` asks for that many instead, placed by Ray (several on one machine distort
    each other's timings: use it knowingly).
    """
    ray = require_ray()
    from dataclasses import replace

    from profiler.devices import CudaDevice

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    common = {"protocol": protocol, "timeout_s": timeout_s, "plugins": tuple(plugins)}
    if actors is not None and int(actors) < 1:
        raise ValueError(f"actors={actors!r} must be >= 1")
    if isinstance(device, CudaDevice):
        gpus = int(sum(n.get("Resources", {}).get("GPU", 0) for n in nodes))
        if gpus < 1:
            raise FleetError("the Ray cluster has no GPU: use --device cpu, or add GPU nodes (`ray start` on a "
                             "machine with GPUs)")
        n = gpus if actors is None else min(int(actors), gpus)
        target = replace(device, index=0)  # the GPU Ray assigns: index 0 of what the actor sees
        return [ActorSpec(target, num_cpus=1, num_gpus=1, **common) for _ in range(n)]
    threads = int(getattr(device, "threads", 1))
    if actors is not None:
        cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)
        if int(actors) * threads > cpus:
            raise FleetError(f"{actors} CPU device(s) of {threads} thread(s) need {int(actors) * threads} CPUs; the "
                             f"Ray cluster has {cpus:g}: ask for fewer --actors or --threads")
        return [ActorSpec(device, num_cpus=threads, **common) for _ in range(int(actors))]
    specs = []
    for node in nodes:
        cpus = node.get("Resources", {}).get("CPU", 0)
        if cpus < threads:
            log.warning("node %s has %s CPUs, fewer than the device's %d threads: not used", node["NodeID"][:8],
                        cpus, threads)
            continue
        specs.append(ActorSpec(device, num_cpus=threads, node=node["NodeID"], **common))
    if not specs:
        raise FleetError(f"no node of the Ray cluster has {threads} free CPU(s) for a CPU device")
    return specs


class Launching:
    """Starting actors and joining them to pools (see the module docstring for the contract)."""

    _ray: Any
    pools: dict[str, Pool]
    failed_starts: list[str]
    start_timeout_s: float
    _starting: dict[Any, tuple[Any, ActorSpec, Pool | None, float]]
    _launched: int

    def _launch(self, spec: ActorSpec, pool: Pool | None, soft: bool = False) -> None:
        from profiler.actor import DeviceActor

        cls = self._ray.remote(DeviceActor)
        handle = cls.options(**spec.options(soft=soft)).remote(
            spec.target, spec.protocol, realtime=spec.realtime, timeout_s=spec.timeout_s,
            max_attempts=spec.max_attempts, plugins=spec.plugins, label=spec.label, index=self._launched)
        self._launched += 1
        self._starting[handle.describe.remote()] = (handle, spec, pool, time.perf_counter())

    def _poll_starting(self, timeout: float) -> None:
        refs = list(self._starting)
        if not refs:
            return
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in ready:
            handle, spec, pool, _t = self._starting.pop(ref)
            try:
                info = self._ray.get(ref)
            except Exception as e:  # the actor could not start (device unusable, import error, ...)
                msg = f"{spec.label or _target_name(spec)}: {first_line(e)}"
                log.warning("device actor did not start: %s", msg)
                self.failed_starts.append(msg)
                with contextlib.suppress(Exception):
                    self._ray.kill(handle)
                continue
            self._join(handle, spec, info, pool)

    def _join(self, handle: Any, spec: ActorSpec, info: dict[str, Any], replacing: Pool | None) -> None:
        plat = info["platform"]
        if replacing is not None and plat != replacing.platform_id:
            log.warning("replacement actor %s reports platform %s, not %s: not used", info["label"], plat,
                        replacing.platform_id)
            self.failed_starts.append(f"{info['label']}: replacement of another platform ({plat})")
            with contextlib.suppress(Exception):
                self._ray.kill(handle)
            return
        pool = self.pools.get(plat)
        if pool is None:
            pool = self.pools[plat] = Pool(self, info)  # type: ignore[arg-type]
            proto = spec.protocol
            if proto is None and info["live"]:
                from profiler.protocol import AdaptiveProtocol

                proto = AdaptiveProtocol()  # the actor's profiler default
            if proto is not None and getattr(proto, "id", None) == info["protocol"]:
                pool.protocol = proto  # the protocol object itself (its settings: placements, max_noise)
            if not info["live"] and callable(getattr(spec.target, "sample", None)):
                pool.sample = spec.target.sample  # a recorded table's own candidates, drawn here (no device time)
        elif info["protocol"] != pool.protocol.id:
            self.failed_starts.append(f"{info['label']}: protocol {info['protocol']} differs from its platform's "
                                      f"{pool.protocol.id}")
            with contextlib.suppress(Exception):
                self._ray.kill(handle)
            return
        pool.slots.append(Slot(handle, spec, info, since=time.perf_counter()))
        if replacing is not None:
            log.info("replacement actor %s joined platform %s", info["label"], plat)

    def _give_up_start(self, ref: Any, why: str) -> None:
        handle, spec, _pool, _t = self._starting.pop(ref)
        self.failed_starts.append(f"{spec.label or _target_name(spec)}: {why}")
        log.warning("device actor %s: %s", spec.label or _target_name(spec), why)
        with contextlib.suppress(Exception):
            self._ray.kill(handle)

    def _expire_starts(self) -> None:
        now = time.perf_counter()
        for ref, (_h, _spec, pool, t) in list(self._starting.items()):
            if pool is not None and now - t > self.start_timeout_s:
                self._give_up_start(ref, f"replacement not placed within {self.start_timeout_s:.0f} s: going on "
                                         f"with the {len(pool.slots)} device(s) left")


def _target_name(spec: ActorSpec) -> str:
    dev = getattr(spec.target, "device", None)
    return str(getattr(dev, "spec", None) or getattr(spec.target, "spec", None) or type(spec.target).__name__)
