"""The worker contract as a Ray actor: one device, measured by the actor, results returned to the coordinator.

:class:`DeviceActor` is a plain class (Ray is optional: nothing here imports it at module level); the coordinator
(:mod:`profiler.fleet`) turns it into an actor with ``ray.remote`` and the device's resources (``num_gpus=1``
for a GPU, the device's threads as ``num_cpus`` for a CPU). Inside the actor:

- a live device (a :class:`profiler.devices.Device`) is measured by a :class:`profiler.worker.Profiler`, so the
  worker contract holds unchanged: the block is built and timed in a child process, and a hang, a crash or an
  out-of-memory block becomes a failed :class:`~profiler.worker.Measurement` while the actor lives on;
- a recorded measurer (anything with the profiler's ``measure``/``platform_id``/``fingerprint``/``device``/
  ``protocol``, e.g. :class:`studies.replay.ReplayOracle`) answers from its table; with ``realtime=True`` the
  actor also takes the measurement's cost in wall time, so a fleet of replay-backed actors behaves like a fleet
  of devices (throughput and fault tests on one small machine).

The actor never writes to the database: it returns each :class:`~profiler.worker.Measurement` (with the actor
that took it in ``device_state["fleet"]``) and the coordinator stores and charges it.

Example (without Ray: the class is usable on its own):
    >>> from profiler.tabular import TabularFamily
    >>> from studies.replay import ReplayOracle, ReplayTable
    >>> rows = [{"hw": str(h), "ms": str(0.1 * h)} for h in (7, 14, 28)]
    >>> table = ReplayTable.from_rows("demo", rows, params=["hw"], latency_col="ms")
    >>> actor = DeviceActor(ReplayOracle(table), realtime=False)
    >>> info = actor.describe()
    >>> info["platform"].startswith("replay-"), info["live"]
    (True, False)
    >>> m = actor.measure(table.family, {"hw": 14})
    >>> m.status, round(m.timing.min_ms, 2), m.device_state["fleet"]["pid"] == info["pid"]
    ('ok', 1.4, True)
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from profiler.devices import Device

__all__ = ["DeviceActor"]


class DeviceActor:
    """One device of a fleet (see the module docstring).

    ``target``: a :class:`~profiler.devices.Device` (measured live by a :class:`~profiler.worker.Profiler` with
    ``protocol``, ``timeout_s`` and ``max_attempts``) or a recorded measurer. ``realtime``: a recorded
    measurer's answer is returned no sooner than its ``cost_s`` after the call began. ``plugins``: modules
    imported first (block families, devices of plug-ins: the actor's process must know them too). ``label``: a
    name for progress and reports (default: host, device and ``index``, the coordinator's number for it).
    """

    def __init__(self, target: Any, protocol: Any = None, *, realtime: bool = True, timeout_s: float | None = None,
                 max_attempts: int = 2, plugins: Sequence[str] = (), label: str | None = None,
                 index: int | None = None) -> None:
        for name in plugins:
            importlib.import_module(name)
        self.live = isinstance(target, Device)
        if self.live:
            from profiler.worker import Profiler

            self.measurer: Any = Profiler(target, protocol, timeout_s=timeout_s, max_attempts=max_attempts)
            self.measurer.start()  # set the device up now: a device that cannot start fails the actor's creation
        else:
            self.measurer = target
        self.realtime = bool(realtime)
        self.host = socket.gethostname()
        self.label = label or f"{self.host}:{self.measurer.device.spec}" + (f"#{index}" if index is not None else "")
        self.measured = 0

    def describe(self) -> dict[str, Any]:
        """What the coordinator pools actors by: the platform id and fingerprint, and where the actor runs."""
        m = self.measurer
        node = None
        try:
            import ray

            if ray.is_initialized():
                node = ray.get_runtime_context().get_node_id()
        except ImportError:
            pass
        return {"platform": m.platform_id, "fingerprint": m.fingerprint, "device": m.device.spec,
                "protocol": m.protocol.id, "supports_protocol": bool(getattr(m, "supports_protocol", False)),
                "live": self.live, "host": self.host, "node": node, "pid": os.getpid(), "label": self.label}

    def measure(self, family: Any, config: dict[str, Any], protocol: Any = None) -> Any:
        """Measure one configuration (a block's own failure comes back as a failed measurement)."""
        t0 = time.perf_counter()
        m = (self.measurer.measure(family, config) if protocol is None
             else self.measurer.measure(family, config, protocol))
        if self.realtime and not self.live:
            left = float(m.cost_s) - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)
        m.device_state = {**(m.device_state or {}), "fleet": {"actor": self.label, "host": self.host,
                                                              "pid": os.getpid()}}
        self.measured += 1
        return m

    def close(self) -> None:
        """Stop the device's worker process (the actor itself is ended by the coordinator)."""
        close = getattr(self.measurer, "close", None)
        if close is not None:
            close()
