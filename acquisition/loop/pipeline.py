"""Pipelined acquisition: the device measures one batch while the engine fits and chooses the next.

Contract: :func:`drive` runs a :class:`~acquisition.engine.CampaignLoop` to its end with a measurer, sequentially
(ask, measure, tell, ask ...) or pipelined, and returns the run's :class:`DeviceTime` (wall, device busy, device
idle). Every result is told by the calling thread (the store keeps one writer), in the order the asks were made.

**Pipelined.** While batch *t* is measured, the engine fits on the batches measured before it and asks for batch
*t + 1* (:meth:`~acquisition.engine.CampaignLoop.ask_ahead`: the pending asks excluded from its choice and
counted against its budget), so the device goes from one batch to the next without waiting::

    device:  | design | B1             | B2                 | B3                 | ...
    engine:           | fit D -> B1 | B2 (same model) | fit D+B1 -> B3 | fit D+B1+B2 -> B4 | ...

Batch *t*'s results are told when the engine's step ends, so each fit sees exactly the batches measured before
it: what a campaign decides does not depend on how fast the machine is. The price is that every batch is chosen
by a model one batch old, and that a stop decided while a batch is in flight has paid for the blocks the device
measured or started meanwhile (they are told, kept and exported; the asks not started are dropped). Both are
measured by the pipelining study (``benchmarks/pipeline_study.py``), not assumed. The engine waits for the
device only before the first fit (nothing is measured yet) and where a step takes longer than a batch.

**Measurers.** A live profiler measures in a thread of its own (its worker is a process; the thread waits on
it). On a CPU device the engine moves off the worker's cores while the two overlap. A measurer that answers at
once (``instant``: a replay oracle, whose ``cost_s`` is a recorded or modelled device time) is measured on a
virtual clock: each block takes its ``cost_s`` of device time, each engine step the seconds it really took, so
the wall, busy and idle seconds are those a device with those costs would see.

**When** (``spec.pipeline``): ``on``, ``off``, or ``auto`` (the default): pipelined everywhere except on a CPU
whose engine cannot have a core of its own, or whose ``doctor`` run found that fitting beside a measurement
moves it (:func:`pipelined`).

Example (a replay table: the virtual clock):
    >>> import csv, os, tempfile
    >>> from acquisition.campaign import CampaignSpec
    >>> from acquisition.engine import run_campaign
    >>> from acquisition.store import Store
    >>> from studies.replay import ReplayOracle, ReplayTable
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "t.csv")
    >>> with open(path, "w", newline="") as fh:
    ...     w = csv.writer(fh); _ = w.writerow(["hw", "c", "ms"])
    ...     w.writerows([hw, c, 1e-3 * hw * hw * c] for hw in range(7, 57, 7) for c in range(8, 129, 8))
    >>> table = ReplayTable.from_csv(path, params=["hw", "c"], latency_col="ms")
    >>> spec = CampaignSpec(name="p", family=table.family.name, model="gbt", budget_samples=60, batch_size=10,
    ...                     initial_size=10, pipeline="on")
    >>> with Store(os.path.join(d, "a.sqlite")) as store:
    ...     res = run_campaign(store, spec, ReplayOracle(table), table.family)
    >>> res.n_train <= 60 and abs(res.device.wall_s - res.device.busy_s - res.device.idle_s) < 1e-6
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from acquisition._schema import fault_point
from acquisition.loop.base import Asked
from profiler.doctor import INTERFERENCE_LIMIT

__all__ = ["IDLE_ACTIVITY", "DeviceTime", "ask_ahead", "batches", "can_think_ahead", "drive", "last_batch",
           "open_batches", "pipelined"]

log = logging.getLogger("latency_acquisition")

IDLE_ACTIVITY = "device_idle"  # ledger: seconds of a run's wall the device waited for the engine (not in the bill)


@dataclass
class DeviceTime:
    """One run's clock: ``wall_s`` from its first ask to its last tell, ``busy_s`` the device's measuring seconds
    (the ``cost_s`` of the measurements told), ``idle_s`` the rest (the device waiting for the engine)."""

    wall_s: float = 0.0
    busy_s: float = 0.0
    idle_s: float = 0.0
    pipelined: bool = False
    virtual: bool = False  # a replay run: the device's seconds are its modelled costs, the engine's are real
    dropped: int = 0  # asks not started when the campaign stopped (dropped from the store)

    @property
    def idle_share(self) -> float:
        return self.idle_s / self.wall_s if self.wall_s > 0 else float("nan")


def pipelined(spec: Any, measurer: Any, store: Any = None) -> bool:
    """Whether a run of ``spec`` on ``measurer`` is pipelined: ``spec.pipeline`` ``on``/``off``, else (``auto``)
    yes, unless the device is a CPU whose engine cannot have a core of its own (the worker's cores are all this
    process may use) or whose platform's last ``doctor`` run found the measurements moved by an engine fitting
    beside them (more than :data:`INTERFERENCE_LIMIT`)."""
    mode = getattr(spec, "pipeline", "auto")
    if mode != "auto":
        return mode == "on"
    device = getattr(measurer, "device", None)
    if getattr(device, "kind", None) != "cpu":
        return True  # a GPU's kernels do not share the engine's core; a replay table measures nothing
    if len(_allowed_cores()) <= int(getattr(device, "threads", 1)):
        return False
    moved = _interference(store, getattr(measurer, "platform_id", None))
    return moved is None or moved <= INTERFERENCE_LIMIT


def _allowed_cores() -> set[int]:
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def _interference(store: Any, platform: str | None) -> float | None:
    """The relative shift the platform's last doctor run measured with the engine fitting beside the profiler
    (``None``: not measured)."""
    if store is None or platform is None or not hasattr(store, "latest_noise_floor"):
        return None
    floor = store.latest_noise_floor(platform)
    checks = (floor or {}).get("checks") or []
    for c in checks if isinstance(checks, list) else []:
        if isinstance(c, dict) and c.get("name") == "interference" and c.get("value") is not None:
            return abs(float(c["value"]))
    return None


def can_think_ahead(loop: Any) -> list[Asked]:
    """The pending asks :func:`ask_ahead` would think beside; empty when it would not think (the campaign ended,
    its design is in flight, its fits are used up, or nothing is in flight: the ordinary next step)."""
    if loop.state is not None or not loop.design.complete():
        return []
    if loop.max_fits is not None and loop.fits >= loop.max_fits:
        return []
    pending = loop.pending()
    if not pending or any(a.batch in ("initial", "validation") for a in pending):
        return []  # nothing in flight (the ordinary next step), or the design: the first fit needs it all
    return pending


def ask_ahead(loop: Any) -> list[Asked]:
    """The next asks while those already asked are being measured (a :class:`~acquisition.engine.CampaignLoop`): the
    probes of the last fully measured cheap batch, then one iteration on the rows measured so far, the pending
    asks excluded from its choice and counted against its budget (when they fill it, the iteration fits,
    checks the stop rule and asks for nothing). Empty when the campaign cannot think ahead: it has ended, its
    design is in flight, or this call's fits are used up."""
    pending = can_think_ahead(loop)
    if not pending:
        return []
    keys, before = {a.key for a in pending}, {(a.key, a.protocol) for a in pending}
    loop.design.ask_probes(keys)
    n_pending = len({a.key for a in loop.pending() if a.role == "train" and a.drawn != "probe"})
    loop.advance(pending=keys, n_pending=n_pending)
    # what is new among the pending asks (stored measurements of the others joined the campaign at no cost)
    return [a for a in loop.pending() if (a.key, a.protocol) not in before]


# -- the devices the driver talks to ----------------------------------------------------------------------------
class _Device:
    """Measures asks in the order submitted; the driver takes the results back one by one."""

    virtual = False

    def __init__(self, measure: Callable[[Asked], Any]) -> None:
        self.measure = measure
        self.busy_s = 0.0

    def submit(self, asks: Sequence[Asked]) -> None: ...

    def result(self) -> tuple[Asked, Any]: ...

    def started(self) -> int:
        """Submitted asks measured or being measured and not taken back yet."""
        return 0

    def cancel(self) -> int:
        """Drop the asks not started; returns how many."""
        return 0

    def engine_step(self) -> None:
        """The engine's step ends here (the virtual clock takes its real seconds)."""

    def wall(self, t0: float) -> float:
        return time.perf_counter() - t0

    def close(self, wait: bool = True) -> None: ...


class _ThreadDevice(_Device):
    """A live measurer in a thread of its own (its worker is another process: the thread mostly waits)."""

    def __init__(self, measure: Callable[[Asked], Any]) -> None:
        super().__init__(measure)
        self.todo: queue.Queue[Asked | None] = queue.Queue()
        self.done: queue.Queue[tuple[Asked, Any, BaseException | None]] = queue.Queue()
        self.lock = threading.Lock()
        self.running = 0  # asks taken from the queue and not yet put in ``done``
        self.thread = threading.Thread(target=self._run, name="device", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (a := self.todo.get()) is not None:
            with self.lock:
                self.running += 1
            t0 = time.perf_counter()
            try:
                m, err = self.measure(a), None
            except BaseException as e:  # handed to the driver's thread, which raises it
                m, err = None, e
            with self.lock:
                self.busy_s += time.perf_counter() - t0
                self.running -= 1
                self.done.put((a, m, err))

    def submit(self, asks: Sequence[Asked]) -> None:
        for a in asks:
            self.todo.put(a)

    def result(self) -> tuple[Asked, Any]:
        a, m, err = self.done.get()
        if err is not None:
            raise err
        return a, m

    def started(self) -> int:
        with self.lock:
            return self.running + self.done.qsize()

    def cancel(self) -> int:
        n = 0
        while True:
            try:
                item = self.todo.get_nowait()
            except queue.Empty:
                return n
            if item is None:
                self.todo.put(None)
                return n
            n += 1

    def close(self, wait: bool = True) -> None:
        self.cancel()
        self.todo.put(None)
        if wait:
            self.thread.join()


class _VirtualDevice(_Device):
    """A measurer that answers at once, on a virtual clock: each answer takes its ``cost_s`` of device time (one
    block after another, from when it was submitted), each engine step its real seconds."""

    virtual = True

    def __init__(self, measure: Callable[[Asked], Any]) -> None:
        super().__init__(measure)
        self.engine_t = 0.0  # the engine's virtual time
        self.mark = time.perf_counter()  # real time the engine clock last caught up with
        self.free_t = 0.0  # when the device finishes what it was given
        self.queue: deque[tuple[Asked, Any, float, float]] = deque()  # ask, measurement, start, end

    def now(self) -> float:
        return self.engine_t + (time.perf_counter() - self.mark)

    def engine_step(self) -> None:
        self.engine_t, self.mark = self.now(), time.perf_counter()

    def submit(self, asks: Sequence[Asked]) -> None:
        self.engine_step()
        for a in asks:
            m = self.measure(a)
            start = max(self.free_t, self.engine_t)
            self.free_t = start + float(getattr(m, "cost_s", 0.0) or 0.0)
            self.queue.append((a, m, start, self.free_t))
        self.mark = time.perf_counter()  # the oracle's lookups are not the engine's time

    def result(self) -> tuple[Asked, Any]:
        a, m, start, end = self.queue.popleft()
        self.engine_step()
        self.engine_t = max(self.engine_t, end)  # the engine waits for the device
        self.busy_s += end - start
        return a, m

    def started(self) -> int:
        now = self.now()
        return sum(1 for _, _, start, _ in self.queue if start < now)

    def cancel(self) -> int:
        now = self.now()
        kept = deque(q for q in self.queue if q[2] < now)
        n = len(self.queue) - len(kept)
        self.queue = kept
        self.free_t = max([q[3] for q in kept], default=min(self.free_t, now))
        return n

    def wall(self, t0: float) -> float:
        self.engine_step()
        return max(self.engine_t, self.free_t)


# -- the driver ---------------------------------------------------------------------------------------------------
def drive(loop: Any, measurer: Any, *, pipeline: bool, progress: bool = False) -> DeviceTime:
    """Run ``loop`` (a :class:`~acquisition.engine.CampaignLoop`) to its end with ``measurer`` (see the module
    docstring); ``pipeline``: think ahead while the device measures. ``progress``: a bar per design batch."""
    cheap = loop.cheap_protocol

    def measure(a: Asked) -> Any:
        if cheap is not None and a.protocol == cheap.id:
            return measurer.measure(loop.family, a.config, cheap)
        return measurer.measure(loop.family, a.config)

    virtual = bool(getattr(measurer, "instant", False))
    t0 = time.perf_counter()
    dev: _Device = _VirtualDevice(measure) if virtual else _ThreadDevice(measure)
    inflight: deque[list[Asked]] = deque()
    told = [0.0]  # device seconds told in this run (the measurements' cost_s)
    dropped = 0
    ok = False
    try:
        with _engine_off_worker_cores(measurer, pipeline and not virtual):
            while True:
                if not inflight:
                    asks = loop.next_asks()
                    if not asks:
                        break
                    dev.submit(asks)
                    inflight.extend(batches(asks))
                if pipeline and open_batches(inflight) == 1 and loop.state is None:
                    loop.inflight = dev.started
                    more = loop.ask_ahead()
                    if more:
                        dev.submit(more)
                        inflight.append(list(more))
                dev.engine_step()
                if loop.state is not None and inflight:  # the campaign ended while asks were in flight
                    flying = [a for batch in inflight for a in batch]
                    dropped = dev.cancel()  # the device works in order: the first ones are measured or started
                    _tell(loop, dev, flying[:len(flying) - dropped], told, progress)
                    _drop(loop, flying[len(flying) - dropped:])
                    break
                _tell(loop, dev, inflight.popleft(), told, progress)
        ok = True
    finally:
        dev.close(wait=ok)  # on an error or ^C the caller closes the measurer, which ends the thread's block
    wall = dev.wall(t0)
    busy = told[0]
    return DeviceTime(wall, busy, max(0.0, wall - busy), pipeline, virtual, dropped)


def batches(asks: Sequence[Asked]) -> list[list[Asked]]:
    """``asks`` (pending, in the order asked) split into what was asked together: a batch, with the probes asked
    in the same step before it (probes are labelled with the batch they re-measure). A campaign resumed with two
    batches pending (pipelined) goes on as if it had not stopped.

        >>> a = [Asked(k, {}, drawn=d, batch=b) for k, d, b in [("x", "random", "2"), ("p", "probe", "2"),
        ...                                                       ("y", "random", "3")]]
        >>> [[x.key for x in g] for g in batches(a)]
        [['x'], ['p', 'y']]
    """
    label: list[str] = []
    following = None
    for a in reversed(asks):
        if a.drawn != "probe":
            following = a.batch
        label.append(following if following is not None else a.batch)
    label.reverse()
    out: list[list[Asked]] = []
    for a, lab, prev in zip(asks, label, [None, *label[:-1]], strict=True):
        if lab != prev or not out:
            out.append([])
        out[-1].append(a)
    return out


def last_batch(asks: Sequence[Asked]) -> str | None:
    """The label of the last batch among ``asks`` (of its last ask that is not a probe); a driver thinks ahead
    once beside each batch in flight, and tells them apart by it.

        >>> last_batch([Asked("x", {}, drawn="random", batch="2"), Asked("p", {}, drawn="probe", batch="3")])
        '2'
    """
    return next((str(a.batch) for a in reversed(asks) if a.drawn != "probe"), None)


def open_batches(inflight: Sequence[list[Asked]]) -> int:
    """The groups in flight holding more than probes (a batch of the design or of an iteration)."""
    return sum(1 for g in inflight if any(a.drawn != "probe" for a in g))


def _tell(loop: Any, dev: _Device, asks: Sequence[Asked], told: list[float], progress: bool) -> None:
    """Take the results of ``asks`` back from the device, in order, telling each as it comes."""
    from tqdm import tqdm

    show = progress and any(a.batch in ("validation", "initial") for a in asks)
    bar = tqdm(total=len(asks), desc=f"profile {loop.family.name}", unit="block", disable=not show,
               file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    failed = 0
    try:
        for _ in asks:
            a, m = dev.result()
            fault_point("profile")
            loop.tell(a, m)
            told[0] += float(getattr(m, "cost_s", 0.0) or 0.0)
            failed += not m.ok
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
    finally:
        bar.close()


def _drop(loop: Any, asks: Sequence[Asked]) -> None:
    """Asks the device never started when the campaign stopped: removed from the store (nothing was paid)."""
    if asks:
        loop.store.drop_asks(loop.spec.name, [a.as_row() for a in asks])


class _engine_off_worker_cores:
    """While a pipelined run overlaps the engine with a CPU worker: this process leaves the worker's cores (so a fit
    does not share a core with a measurement), and gets its cores back afterwards. Not Linux, or no spare core:
    nothing changes."""

    def __init__(self, measurer: Any, on: bool) -> None:
        self.measurer, self.on, self.saved = measurer, on, None

    def __enter__(self) -> None:
        if not self.on or getattr(getattr(self.measurer, "device", None), "kind", None) != "cpu":
            return
        start = getattr(self.measurer, "start", None)
        if not callable(start) or not hasattr(os, "sched_setaffinity"):
            return
        try:
            start()
            pid = getattr(self.measurer, "pid", None)
            mine = set(os.sched_getaffinity(0))
            spare = mine - set(os.sched_getaffinity(pid)) if pid else set()
            if spare and spare != mine:
                self.saved = mine
                os.sched_setaffinity(0, spare)
        except (OSError, ProcessLookupError) as e:  # best effort: the run goes on unpinned
            log.debug("engine not moved off the worker's cores: %s", e)

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, self.saved)
