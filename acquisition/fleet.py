"""Profiling on a fleet: device actors on Ray, pooled by platform, driven by one coordinator (docs/design.md §8).

Ray (the optional extra ``latency-acquisition[ray]``) places and runs the actors; this module is the
coordinator's side of it. The coordinator stays the single writer of the store and the ledger: actors only
measure (:class:`profiler.actor.DeviceActor`) and send each :class:`~profiler.worker.Measurement` back.

- :func:`connect` joins a cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or starts a private one on
  loopback (``local``). Without Ray installed it raises :class:`FleetError` with the install command.
- :func:`device_actor_specs` reads the cluster and says which actors to start: one per GPU (``num_gpus=1``), or
  one per node for the CPU (pinned to its node, reserving the device's threads as ``num_cpus``: two CPU
  measurements on one machine distort each other).
- :class:`Fleet` starts the actors, reads each one's platform fingerprint and **pools identical devices into one
  platform** (:class:`Pool`); different devices are different platforms.
- A :class:`Pool` is a measurer with the profiler's interface (``platform_id``, ``fingerprint``, ``device``,
  ``protocol``, ``measure``) plus :meth:`Pool.imap`, which spreads many configurations over the pool's actors
  and yields each measurement as it arrives; :func:`acquisition.profiling.profile_configs` uses it.
  :func:`acquisition.fleet_run.run_fleet` runs one campaign per platform at once.

**Faults.** Every configuration is in exactly one place: the pool's queue, or in flight on one actor. When an
actor dies (``ray.kill``, its node lost, its process killed) or stops answering (no result after
``job_timeout_s``: it is killed), the configurations it held go back to the front of the queue and the others
go on. A measurement is stored only when its result arrives, so nothing is stored or charged twice; the device
time the dead actor spent on its unfinished block is charged apart (``on_lost``: the ledger's ``lost_profile``,
part of the campaign's bill). A replacement actor with the same resources is requested at once and joins the
pool when it reports the same platform; if the cluster cannot place one within ``start_timeout_s`` the pool
goes on with the devices left, and a pool with no device left raises :class:`FleetError` (the campaign can be
resumed later, as ``run`` resumes any campaign).

Example (a private local instance; replay-backed actors that answer from a recorded table):
    >>> from studies.replay import ReplayOracle, ReplayTable
    >>> rows = [{"hw": str(h), "ms": str(0.1 * h)} for h in range(1, 9)]
    >>> table = ReplayTable.from_rows("demo", rows, params=["hw"], latency_col="ms")
    >>> connect("local", num_cpus=1)  # doctest: +SKIP
    >>> specs = [ActorSpec(ReplayOracle(table), realtime=False, num_cpus=0) for _ in range(2)]
    >>> with Fleet(specs) as fleet:  # doctest: +SKIP
    ...     pool = fleet.pool()
    ...     got = dict(pool.imap(table.family, table.configs))
    >>> len(got), len(fleet.throughput())  # doctest: +SKIP
    (8, 2)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

__all__ = ["INSTALL_HINT", "ActorSpec", "Fleet", "FleetError", "Job", "Pool", "connect", "device_actor_specs",
           "disconnect", "require_ray"]

log = logging.getLogger("latency_acquisition.fleet")

INSTALL_HINT = "pip install 'latency-acquisition[ray]'"
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")


class FleetError(RuntimeError):
    """The fleet cannot go on: Ray missing or unreachable, no actor started, a platform with no device left."""


def require_ray() -> Any:
    """The ``ray`` module, or :class:`FleetError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise FleetError(f"profiling on a Ray cluster needs Ray, which is not installed here: {INSTALL_HINT}") \
            from None
    return ray


def check_address(address: str) -> str:
    """``address`` if it is ``auto``, ``local``, ``HOST:PORT`` or ``ray://HOST:PORT``; else :class:`ValueError`."""
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise ValueError(f"ray address {address!r} is not allowed: expected auto, local, HOST:PORT or "
                         "ray://HOST:PORT")
    return address.strip()


def connect(address: str, *, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Connect this process to Ray: ``local`` starts a private instance on loopback (``num_cpus`` default: the
    machine's cores; ``num_gpus`` default: Ray's detection); ``auto`` joins the cluster this machine belongs
    to (``ray start``, or ``RAY_ADDRESS``); ``HOST:PORT`` / ``ray://HOST:PORT`` joins that one. Returns
    ``False`` when the process was already connected (that connection is used), else ``True``."""
    address = check_address(address)
    ray = require_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address == "local":
            os.environ.pop("RAY_ADDRESS", None)  # a private instance, whatever the environment names
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, num_gpus=num_gpus, _node_ip_address="127.0.0.1",
                     runtime_env=_local_env(), **kw)
        else:
            if address != "auto":
                _check_reachable(address)
            ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FleetError(f"ray address {address!r}: no Ray cluster could be reached ({first})") from None
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """:class:`FleetError` at once when nothing listens at ``HOST:PORT`` (Ray itself retries for minutes)."""
    import socket

    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise FleetError(f"ray address {address!r}: nothing answers there ({e.strerror or e}); start the cluster "
                         "with `ray start --head` on that machine, or use --ray-address local") from None


def _local_env() -> dict[str, Any]:
    """A local instance's workers see the modules the coordinator sees (its working folder: plug-ins, tests)."""
    paths = [os.getcwd(), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def disconnect() -> None:
    """Leave Ray (a private ``local`` instance stops with it)."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()


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
class _Slot:
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
        self.slots: list[_Slot] = []
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


class Fleet:
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
        self.retired: list[_Slot] = []
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
            raise FleetError("not connected to Ray: call acquisition.fleet.connect(address) first")
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

    # -- starting and replacing actors ---------------------------------------------------------------------
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
                msg = f"{spec.label or _target_name(spec)}: {_first_line(e)}"
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
            pool = self.pools[plat] = Pool(self, info)
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
        pool.slots.append(_Slot(handle, spec, info, since=time.perf_counter()))
        if replacing is not None:
            log.info("replacement actor %s joined platform %s", info["label"], plat)

    def _give_up_start(self, ref: Any, why: str) -> None:
        handle, spec, _pool, _t = self._starting.pop(ref)
        self.failed_starts.append(f"{spec.label or _target_name(spec)}: {why}")
        log.warning("device actor %s: %s", spec.label or _target_name(spec), why)
        with contextlib.suppress(Exception):
            self._ray.kill(handle)

    def _replace(self, pool: Pool, slot: _Slot) -> None:
        if not self.replace or pool.replacements >= pool.max_replacements:
            return
        pool.replacements += 1
        self._launch(slot.spec, pool, soft=True)  # its node may be gone: Ray may place it elsewhere

    # -- dispatch -------------------------------------------------------------------------------------------
    def submit(self, pool: Pool, job: Job) -> None:
        """Queue ``job`` on ``pool`` (sent to an actor by the next :meth:`pump`)."""
        pool.queue.append(job)

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

    def _send(self, slot: _Slot, job: Job) -> None:
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

    def _arrived(self, pool: Pool, slot: _Slot, ref: Any) -> list[tuple[Job, Any]]:
        idx = next(i for i, (r, _) in enumerate(slot.inflight) if r == ref)
        try:
            m = self._ray.get(ref)
        except Exception as e:
            from profiler.worker import ProfilerError

            if isinstance(e, (self._ray.exceptions.RayActorError, ProfilerError)):
                self._lose(pool, slot, _first_line(e))
                return []
            raise FleetError(f"actor {slot.label} failed on {slot.inflight[idx][1].config}: {_first_line(e)}") \
                from None
        _, job = slot.inflight.pop(idx)
        now = time.perf_counter()
        slot.since = now
        slot.measurements += 1
        slot.device_s += float(getattr(m, "cost_s", 0.0) or 0.0)
        return [(job, m)]

    def _lose(self, pool: Pool, slot: _Slot, reason: str) -> None:
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

    def _retire(self, slot: _Slot, reason: str) -> None:
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

    def _expire_starts(self) -> None:
        now = time.perf_counter()
        for ref, (_h, _spec, pool, t) in list(self._starting.items()):
            if pool is not None and now - t > self.start_timeout_s:
                self._give_up_start(ref, f"replacement not placed within {self.start_timeout_s:.0f} s: going on "
                                         f"with the {len(pool.slots)} device(s) left")

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


def _first_line(e: BaseException) -> str:
    """An exception's message in one line (Ray's carry the remote traceback: keep its last line)."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    last = lines[-1]
    return last if len(lines) > 1 and ("Error" in last or ":" in last) else lines[0]


def _target_name(spec: ActorSpec) -> str:
    dev = getattr(spec.target, "device", None)
    return str(getattr(dev, "spec", None) or getattr(spec.target, "spec", None) or type(spec.target).__name__)
