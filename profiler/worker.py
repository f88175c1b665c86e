"""Profiling in a long-lived worker process, one per device.

:class:`Profiler` is the parent-side handle. It starts a spawned worker (:mod:`profiler._worker_main`) that sets
up the device, pins glibc's allocator thresholds and reports its fingerprint, then measures one block per job.
A hang (timeout), an exception, a crash (segfault, abort) or running out of memory in one block becomes a
failed :class:`Measurement` with its reason; the worker is restarted on the next job and the caller never dies.
An unstable timing (see :meth:`profiler.protocol.Timing.unstable_reason`, or a GPU that throttled) is measured
again in a fresh worker with more warm-up, up to ``max_attempts`` times (once, for a protocol with
``retry_unstable=False``); every attempt is charged.

Example:
    >>> from profiler.families import get_family
    >>> from profiler.protocol import AdaptiveProtocol
    >>> fam = get_family("mbconv")
    >>> cfg = {"input_hw": 14, "cin": 32, "cout": 32, "expansion": 3, "kernel": 3, "stride": 1, "se": False,
    ...        "act": "relu"}
    >>> with Profiler("cpu", AdaptiveProtocol(min_seconds=0.02)) as prof:
    ...     m = prof.measure(fam, cfg)
    >>> m.status, m.timing.min_ms > 0, m.cost_s >= m.timing.timed_s
    ('ok', True, True)
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from profiler.devices import SLOWDOWN_REASONS, Device, parse_device, platform_id
from profiler.protocol import AdaptiveProtocol, MeasurementProtocol, Timing

__all__ = ["Measurement", "Profiler", "ProfilerError"]

log = logging.getLogger("latency_acquisition.profiler")
_ENV_LOCK = threading.Lock()


class ProfilerError(RuntimeError):
    """The worker cannot be used at all (it failed to start, or a job cannot be sent to it)."""


@dataclass
class Measurement:
    """The outcome of profiling one configuration (``status`` is ``"ok"`` or ``"failed"``).

    ``cost_s`` is the wall time charged for it: every attempt, from sending the job to receiving the result
    (build, warm-up, timing and the worker's overhead), including time lost to a hang or a crash, and the start
    of the fresh worker a re-measurement of an unstable timing runs in.
    """

    family: str
    key: str
    config: dict[str, Any]
    protocol: str
    platform: str
    status: str
    cost_s: float
    attempts: int = 1
    reason: str | None = None
    timing: Timing | None = None
    stable: bool = True
    unstable_reason: str | None = None
    build_s: float | None = None
    device_state: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _default_memory_limit(device: Device) -> int | None:
    """Address-space cap for CPU workers: 75 % of physical memory (CUDA maps huge address ranges: no cap)."""
    if device.kind != "cpu":
        return None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return int(total * 0.75)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "worker stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if name == "SIGKILL":
            return "worker killed by SIGKILL (out of memory, or killed from outside)"
        return f"worker crashed ({name})"
    return f"worker exited with code {exitcode}"


def _throttled(state: dict[str, Any]) -> list[str]:
    reasons: set[str] = set()
    for reading in state.values():
        if isinstance(reading, dict):
            reasons.update(r for r in reading.get("throttle", ()) if r in SLOWDOWN_REASONS)
    return sorted(reasons)


class Profiler:
    """Parent-side handle of one device's worker process (see the module docstring).

    Parameters are stored as given; the worker starts on first use (or :meth:`start`). ``timeout_s`` defaults
    to the protocol's suggestion; ``memory_limit`` (bytes, ``"auto"`` or ``None``) caps a CPU worker's address
    space so that an over-allocating block fails cleanly instead of starving the machine.
    """

    def __init__(self, device: Device | str = "cpu", protocol: MeasurementProtocol | None = None, *,
                 timeout_s: float | None = None, memory_limit: int | str | None = "auto", max_attempts: int = 2,
                 start_timeout_s: float = 180.0) -> None:
        self.device = parse_device(device) if isinstance(device, str) else device
        self.protocol = protocol or AdaptiveProtocol()
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r} must be > 0")
        if int(max_attempts) < 1:
            raise ValueError(f"max_attempts={max_attempts!r} must be >= 1")
        self.timeout_s = float(timeout_s) if timeout_s is not None else self.protocol.suggested_timeout()
        self.memory_limit = _default_memory_limit(self.device) if memory_limit == "auto" else memory_limit
        self.max_attempts = int(max_attempts)
        self.start_timeout_s = start_timeout_s
        self.fingerprint: dict[str, Any] | None = None
        self.restarts = 0
        self._proc: Any = None
        self._conn: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def platform_id(self) -> str:
        self.start()
        assert self.fingerprint is not None
        return platform_id(self.fingerprint)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def start(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        self._cleanup()
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        from profiler._worker_main import worker_main

        proc = ctx.Process(target=worker_main, args=(child, self.device, self.memory_limit),
                           name=f"profiler-worker-{self.device.spec}", daemon=True)
        env = self.device.worker_env()
        with _ENV_LOCK:  # the spawned interpreter inherits os.environ as it is at start()
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                proc.start()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        child.close()
        self._proc, self._conn = proc, parent
        if not parent.poll(self.start_timeout_s):
            self._kill()
            raise ProfilerError(f"the {self.device.spec} worker did not start within {self.start_timeout_s:.0f} s")
        try:
            kind, body = parent.recv()
        except (EOFError, OSError):
            code = self._reap()
            raise ProfilerError(f"the {self.device.spec} worker died while starting: {_exit_reason(code)}") from None
        if kind != "ready":
            self._kill()
            raise ProfilerError(f"the {self.device.spec} worker could not set up the device: {body}")
        fp = body["fingerprint"]
        if self.fingerprint is not None and fp != self.fingerprint:
            self._kill()
            raise ProfilerError("the restarted worker reports a different platform fingerprint; refusing to mix")
        self.fingerprint = fp
        log.debug("worker %s started (pid %s, malloc pinned: %s)", self.device.spec, body["pid"],
                  body["malloc_pinned"])

    def restart(self) -> None:
        self._kill()
        self.restarts += 1
        self.start()

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(("stop",))
                self._proc.join(5)
            except (OSError, BrokenPipeError):
                pass
        self._kill()

    def __enter__(self) -> Profiler:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: never leave a worker behind
        with contextlib.suppress(Exception):
            self._kill()

    def _reap(self) -> int | None:
        if self._proc is None:
            return None
        self._proc.join(10)
        return self._proc.exitcode

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._proc, self._conn = None, None

    # -- measuring -------------------------------------------------------------------------------------------
    def _job(self, family: Any, config: dict[str, Any], protocol: MeasurementProtocol) -> tuple[str, Any, float]:
        """Run one job; returns (kind, body, wall seconds). Never raises for a block's own failure."""
        self.start()
        try:
            payload = pickle.dumps(("measure", family, config, protocol))
        except Exception as exc:
            raise ProfilerError(f"family {family.name!r} cannot be sent to the worker process (it must be "
                                f"picklable: define it at module level): {exc}") from exc
        t0 = time.perf_counter()
        try:
            self._conn.send_bytes(payload)
        except (BrokenPipeError, OSError):  # died between jobs: restart once and resend
            self.restart()
            t0 = time.perf_counter()
            self._conn.send_bytes(payload)
        if not self._conn.poll(self.timeout_s):
            self._kill()
            return "failed", {"reason": f"timeout: no result after {self.timeout_s:g} s (worker restarted)"}, \
                time.perf_counter() - t0
        try:
            kind, body = self._conn.recv()
        except (EOFError, OSError):
            code = self._reap()
            self._cleanup()
            return "failed", {"reason": _exit_reason(code)}, time.perf_counter() - t0
        wall = time.perf_counter() - t0
        if self._proc is not None:
            self._proc.join(0)
            if not self._proc.is_alive():  # the worker chose to exit (unusable CUDA context)
                self._cleanup()
        return kind, body, wall

    supports_protocol = True  # measure() takes a per-call protocol (the engine's fidelity lever uses it)

    def measure(self, family: Any, config: dict[str, Any], protocol: MeasurementProtocol | None = None
                ) -> Measurement:
        """Profile one configuration of ``family`` with ``protocol`` (default: the profiler's own); failures come
        back as ``status="failed"``."""
        cfg = family.validate(config)
        key = family.key(cfg)
        proto = protocol or self.protocol
        base = {"family": family.name, "key": key, "config": cfg, "protocol": proto.id}
        self.start()
        plat = self.platform_id
        cost = 0.0
        attempts: list[dict[str, Any]] = []
        attempts_allowed = self.max_attempts if getattr(proto, "retry_unstable", True) else 1
        for attempt in range(1, attempts_allowed + 1):
            if attempt > 1:
                t0 = time.perf_counter()
                self.restart()  # a fresh process: new allocator state, new address-space layout
                cost += time.perf_counter() - t0  # device time spent for this measurement: charged too
                proto = proto.with_more_warmup()
            kind, body, wall = self._job(family, cfg, proto)
            cost += wall
            if kind != "ok":
                log.info("%s %s failed: %s", family.name, key, body["reason"])
                return Measurement(**base, platform=plat, status="failed", cost_s=cost, attempts=attempt,
                                   reason=body["reason"])
            timing = Timing(**body["timing"])
            why = timing.unstable_reason(proto.max_spread)
            slow = _throttled(body["device_state"])
            if why is None and slow:
                why = "GPU slowed down during the measurement: " + ", ".join(slow)
            attempts.append({"timing": timing, "why": why, "body": body})
            if why is None:
                break
            log.info("%s %s unstable (attempt %d): %s", family.name, key, attempt, why)
        chosen = next((a for a in attempts if a["why"] is None), None)
        if chosen is None:  # none converged: keep the most coherent attempt and flag it
            chosen = min(attempts, key=lambda a: a["timing"].spread)
        return Measurement(**base, platform=plat, status="ok", cost_s=cost, attempts=len(attempts),
                           timing=chosen["timing"], stable=chosen["why"] is None, unstable_reason=chosen["why"],
                           build_s=chosen["body"]["build_s"], device_state=chosen["body"]["device_state"])
