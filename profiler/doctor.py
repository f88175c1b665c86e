"""Is this machine fit to measure? The noise floor and what disturbs timing (``python -m acquisition doctor``).

:func:`diagnose` measures a small fixed probe set (``probe_n`` ``mbconv`` configurations, Sobol-drawn so sizes go
from tiny to large) with the default adaptive protocol in **two fresh worker processes**, one after the other,
and compares the two runs like :mod:`acquisition.noise` compares a repeat with its measurement (median and worst
relative difference, share within ±10 %, Spearman). Around the probe it checks what disturbs timing, each check
a :class:`Check` (``ok``, ``warn``, ``fail`` or ``info``, with its reading and the reason):

- **memory contention**: how much a memory-bound probe's fastest copy moves between short windows (the cache
  and memory bandwidth a VM shares with the host's other guests);
- **load**: CPU time other processes used during the probe (all CPUs' busy time, read by psutil, minus this
  process's and its workers'), in cores; **steal time**: the share of the CPUs' time the hypervisor gave to other
  guests;
- **cpu frequency**: governors, the clock over the probe, turbo/boost (``/sys/devices/system/cpu``);
- **threads**: the device's threads against the usable cores; **huge pages**: transparent huge pages;
- on a GPU (through pynvml): throttle reasons, other processes computing on it, persistence mode, clocks;
- **placement noise**: the median of each measurement's own noise (the spread of its placements' minima).

The verdict: ``ok`` when every check is ok or info and the probe repeats (:data:`MAX_MEDIAN_DIFF`,
:data:`MAX_WORST_DIFF`, :data:`MIN_SPEARMAN`); ``busy`` when other processes (or other guests, or other GPU
processes) compete for the device; ``noisy`` when the probe misses a threshold or a setting makes timings depend
on the machine's state; ``unusable`` when a probe measurement failed or the worker could not start. With a store,
the result is kept in ``noise_floors`` with the platform and its wall time charged as ``noise_profile``.

Example (the checks are small functions of their readings):
    >>> before = LoadSnapshot(wall_s=0.0, busy_s=100.0, steal_s=0.0, own_cpu_s=5.0, cpus=2)
    >>> after = LoadSnapshot(wall_s=60.0, busy_s=218.0, steal_s=0.0, own_cpu_s=64.0, cpus=2)
    >>> c = check_load(before, after)
    >>> c.status, c.reason
    ('fail', 'another process used 0.98 of a core during the probe (fail at 0.25)')
    >>> check_transparent_hugepages(root="/nonexistent").status
    'info'
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["BUSY_CHECKS", "INTERFERENCE_LIMIT", "MAX_MEDIAN_DIFF", "MAX_WORST_DIFF", "MIN_SPEARMAN", "PROBE_FAMILY",
           "Check", "DoctorReport", "LoadSnapshot", "check_frequency", "check_interference", "check_load",
           "check_memory", "check_steal",
           "check_threads", "check_transparent_hugepages", "diagnose", "gpu_checks", "memory_windows",
           "read_cpufreq", "read_gpu", "take_snapshot", "verdict_of"]

# The probe repeats when two fresh processes agree this closely (relative differences of min_ms). A machine
# that meets them gives ground truth a ±10 % surrogate can be judged on: the idle 2-core VM reached a
# median of 2.7 % and worst 14-19 % before the tail was cut; the development machine 1.4-2.1 %.
MAX_MEDIAN_DIFF = 0.02
MAX_WORST_DIFF = 0.10
MIN_SPEARMAN = 0.995
# Other processes' CPU use during the probe, in cores: an idle machine's daemons stay well below the warning;
# a competing busy loop is about 1.0.
LOAD_WARN_CORES = 0.10
LOAD_FAIL_CORES = 0.25
# The scatter (p90 / p10 - 1) of a memory-bound probe's fastest copy over short windows (check_memory).
MEMORY_WARN = 0.05
MEMORY_FAIL = 0.15
# Steal time as a share of the CPUs' time over the probe (a VM whose host is busy).
STEAL_WARN = 0.01
STEAL_FAIL = 0.05
PROBE_FAMILY = "mbconv"
# the interference check (check_interference): blocks of the probe set measured alone and beside a fitting engine,
# and the shift beyond which `pipeline=auto` runs one step after the other (acquisition.loop.pipeline reads it)
INTERFERENCE_N = 8
INTERFERENCE_LIMIT = 0.02
STATUSES = ("ok", "warn", "fail", "info")
BUSY_CHECKS = ("load", "steal time", "gpu processes")  # a fail here means the device is shared: verdict busy
VERDICTS = ("ok", "busy", "noisy", "unusable")


@dataclass(frozen=True)
class Check:
    """One thing that disturbs timing: its ``status`` (ok, warn, fail or info), what was read, and why it is
    not ok (``None`` when it is)."""

    name: str
    status: str
    reading: str
    reason: str | None = None
    value: float | None = None  # the reading as a number, where something reads it back (``interference``)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} is not allowed: expected one of {', '.join(STATUSES)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _join(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


# -- load and steal time ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadSnapshot:
    """CPU accounting at one instant: monotonic seconds, the busy and stolen CPU seconds of all CPUs
    (``/proc/stat``), the CPU seconds of this process and its children (finished ones, and live ``pids``), the
    CPUs counted and the 1-minute load average."""

    wall_s: float
    busy_s: float
    steal_s: float
    own_cpu_s: float
    cpus: int
    loadavg: float | None = None


def _pid_cpu_s(pid: int) -> float:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except (psutil.Error, OSError):  # gone, or not ours to read
        return 0.0
    return t.user + t.system


def take_snapshot(pids: Sequence[int] = ()) -> LoadSnapshot | None:
    """A :class:`LoadSnapshot` of this machine now (psutil: ``/proc/stat`` on Linux), or ``None`` where the CPU
    accounting cannot be read. Busy time is user + nice + system + irq + softirq of all CPUs (guest time is
    inside user); steal time is the hypervisor's, where the platform reports it."""
    import psutil

    try:
        cpu = psutil.cpu_times()
        loadavg: float | None = psutil.getloadavg()[0]
    except (OSError, AttributeError, NotImplementedError):
        return None
    busy = cpu.user + getattr(cpu, "nice", 0.0) + cpu.system + getattr(cpu, "irq", 0.0) + getattr(cpu, "softirq", 0.0)
    own = psutil.Process().cpu_times()
    own_s = own.user + own.system + own.children_user + own.children_system + sum(_pid_cpu_s(p) for p in pids)
    return LoadSnapshot(time.monotonic(), busy, getattr(cpu, "steal", 0.0), own_s, psutil.cpu_count() or 1, loadavg)


def _cores(x: float) -> str:
    return f"{x:.2f} of a core" if x < 1 else f"{x:.2f} cores"


def check_load(before: LoadSnapshot | None, after: LoadSnapshot | None) -> Check:
    """Other processes' CPU use between two snapshots, in cores (busy CPU time minus this process's and its
    workers', over the wall time)."""
    if before is None or after is None or after.wall_s <= before.wall_s:
        return Check("load", "info", "no CPU accounting: the load of other processes cannot be read")
    wall = after.wall_s - before.wall_s
    other = max(0.0, (after.busy_s - before.busy_s) - (after.own_cpu_s - before.own_cpu_s)) / wall
    la = "" if before.loadavg is None else f"; load average {before.loadavg:.2f} before"
    reading = f"other processes used {_cores(other)} during the {wall:.0f} s probe{la}"
    if other >= LOAD_FAIL_CORES:
        return Check("load", "fail", reading,
                     f"another process used {_cores(other)} during the probe (fail at {LOAD_FAIL_CORES})")
    if other >= LOAD_WARN_CORES:
        return Check("load", "warn", reading,
                     f"other processes used {_cores(other)} during the probe (warn at {LOAD_WARN_CORES})")
    return Check("load", "ok", reading)


def check_steal(before: LoadSnapshot | None, after: LoadSnapshot | None) -> Check:
    """Steal time between two snapshots as a share of the CPUs' time (the hypervisor ran other guests)."""
    if before is None or after is None or after.wall_s <= before.wall_s or after.cpus < 1:
        return Check("steal time", "info", "no CPU accounting: steal time cannot be read")
    share = max(0.0, after.steal_s - before.steal_s) / ((after.wall_s - before.wall_s) * after.cpus)
    reading = f"{100 * share:.1f} % of the CPUs' time stolen by the hypervisor during the probe"
    if share >= STEAL_FAIL:
        return Check("steal time", "fail", reading, f"the host took {100 * share:.1f} % of this VM's CPU time "
                     f"(fail at {100 * STEAL_FAIL:.0f} %): other guests compete for the cores")
    if share >= STEAL_WARN:
        return Check("steal time", "warn", reading, f"the host took {100 * share:.1f} % of this VM's CPU time "
                     f"(warn at {100 * STEAL_WARN:.0f} %)")
    return Check("steal time", "ok", reading)


# -- frequency scaling ----------------------------------------------------------------------------------------------
def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def read_cpufreq(root: str = "/") -> dict[str, Any]:
    """Governors, current and maximum clocks (kHz) of every CPU, and the turbo/boost switches, where present."""
    base = _join(root, "/sys/devices/system/cpu")
    governors, cur, top = set(), [], []
    for d in sorted(glob.glob(os.path.join(base, "cpu[0-9]*", "cpufreq"))):
        g = _read(os.path.join(d, "scaling_governor"))
        if g:
            governors.add(g.strip())
        f = _int(_read(os.path.join(d, "scaling_cur_freq")))
        if f:
            cur.append(f)
        m = _int(_read(os.path.join(d, "cpuinfo_max_freq")))
        if m:
            top.append(m)
    return {"governors": sorted(governors), "cur_khz": cur, "max_khz": max(top) if top else None,
            "no_turbo": _int(_read(os.path.join(base, "intel_pstate", "no_turbo"))),
            "boost": _int(_read(os.path.join(base, "cpufreq", "boost")))}


def check_frequency(readings: Sequence[Mapping[str, Any]]) -> Check:
    """Frequency scaling from :func:`read_cpufreq` readings taken over the probe: a governor other than
    ``performance`` or turbo/boost on is a warning (timings then depend on the load before and on temperature)."""
    name = "cpu frequency"
    governors = sorted({g for r in readings for g in r.get("governors", ())})
    cur = [f for r in readings for f in r.get("cur_khz", ())]
    turbo = any(r.get("no_turbo") == 0 or r.get("boost") == 1 for r in readings)
    if not governors and not cur:
        reading = "no cpufreq interface (a virtual machine): frequency cannot be read"
        return Check(name, "warn" if turbo else "info", reading + ("; turbo on" if turbo else ""),
                     "turbo boost is on: timings depend on temperature" if turbo else None)
    top = max((r["max_khz"] for r in readings if r.get("max_khz")), default=None)
    parts = [f"governor {'/'.join(governors) or 'unknown'}"]
    if cur:
        parts.append(f"{min(cur) / 1e6:.2f}-{max(cur) / 1e6:.2f} GHz during the probe"
                     + (f" (max {top / 1e6:.2f} GHz)" if top else ""))
    if turbo:
        parts.append("turbo on")
    reasons = []
    slow = [g for g in governors if g != "performance"]
    if slow:
        reasons.append(f"CPU frequency governor {'/'.join(slow)}, not performance: the clock follows the load, "
                       "so a block's time depends on what ran before it")
    if turbo:
        reasons.append("turbo boost is on: timings depend on temperature")
    return Check(name, "warn" if reasons else "ok", "; ".join(parts), "; ".join(reasons) or None)


# -- threads and huge pages -------------------------------------------------------------------------------------
def check_threads(device: Any, *, env: Mapping[str, str] | None = None, cpu_count: int | None = None,
                  affinity: set[int] | None = None) -> Check:
    """The device's threads against the cores this process may run on; thread variables of the parent
    environment that differ from them (the worker sets its own: information only)."""
    env = os.environ if env is None else env
    cpu_count = cpu_count or os.cpu_count() or 1
    if affinity is None:
        affinity = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(cpu_count))
    usable = len(affinity)
    threads = getattr(device, "threads", None) if getattr(device, "kind", "cpu") == "cpu" else None
    reading = (f"{threads} thread{'s' if threads != 1 else ''} on " if threads else "") + \
        f"{usable} usable core{'s' if usable != 1 else ''} of {cpu_count}"
    if threads and threads > usable:
        return Check("threads", "fail", reading, f"{threads} threads on {usable} usable cores: threads wait for "
                     f"each other (use --threads {usable} or fewer)")
    want = str(threads) if threads else None
    other = [f"{k}={env[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in env and env[k] != want]
    if other:
        return Check("threads", "info", reading + f"; {', '.join(other)} in this environment (the worker sets its "
                     "own)")
    return Check("threads", "ok", reading)


def check_transparent_hugepages(root: str = "/") -> Check:
    """Transparent huge pages: ``never`` is a warning (workers back large tensors with them)."""
    text = _read(_join(root, "/sys/kernel/mm/transparent_hugepage/enabled"))
    if text is None:
        return Check("huge pages", "info", "no transparent-huge-page interface")
    words = text.split()
    mode = next((w.strip("[]") for w in words if w.startswith("[")), words[0] if words else "unknown")
    if mode == "never":
        return Check("huge pages", "warn", f"transparent huge pages {mode}",
                     "transparent huge pages are off (never): workers back large tensors with them, without "
                     "them large activations page-fault and time less repeatably")
    return Check("huge pages", "ok", f"transparent huge pages {mode}")


# -- GPU ----------------------------------------------------------------------------------------------------------
def memory_windows(seconds: float = 2.0, window_s: float = 0.2, mib: int = 64) -> list[float]:
    """The fastest copy of a ``mib`` MiB array in each ``window_s`` window for ``seconds`` (milliseconds).

    A memory-bound probe that reads and writes, as a block's layers do: its time depends on the last-level cache
    and memory bandwidth, which a virtual machine shares with the host's other guests. (A read-only pass does
    not show the contention: on this KVM guest a 64 MiB sum moved by 0.6 % between windows while a copy of the
    same array moved by 8-30 %, as much as large blocks do.) Measured in this process, before the probe's
    workers start.
    """
    a = np.ones(mib * (1 << 20) // 4, dtype=np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)  # touch the pages once
    out: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        stop, best = time.perf_counter() + window_s, math.inf
        while time.perf_counter() < stop:
            t0 = time.perf_counter_ns()
            np.copyto(b, a)
            best = min(best, (time.perf_counter_ns() - t0) / 1e6)
        out.append(best)
    return out


def check_memory(windows_ms: Sequence[float]) -> Check:
    """How much the fastest copy of a memory-bound probe moves between short windows (p90 / p10 of the window
    minima). Other guests of the host, or other processes here, contending for the last-level cache and memory
    bandwidth make memory-bound blocks' minima move by as much between processes
    (docs/benchmarks/2026-11-30-noise.md)."""
    w = np.asarray([x for x in windows_ms if np.isfinite(x) and x > 0], dtype=float)
    if w.size < 5:
        return Check("memory contention", "info", "not measured")
    scatter = float(np.percentile(w, 90) / np.percentile(w, 10) - 1)
    reading = (f"a memory-bound probe's fastest copy moves by {100 * scatter:.1f} % between "
               f"{w.size} windows of a fraction of a second")
    if scatter > MEMORY_FAIL:
        return Check("memory contention", "fail", reading,
                     f"{reading} (fail above {100 * MEMORY_FAIL:.0f} %): the cache or memory bandwidth is shared "
                     "with something busy; blocks larger than the cache will not repeat")
    if scatter > MEMORY_WARN:
        return Check("memory contention", "warn", reading,
                     f"{reading} (warn above {100 * MEMORY_WARN:.0f} %): the cache or memory bandwidth is shared "
                     "(another guest of the host, or a process here); blocks larger than the cache repeat worse")
    return Check("memory contention", "ok", reading)


def _nvml_target(index: int, env: Mapping[str, str] | None = None) -> tuple[str | None, int]:
    """(uuid, NVML index) of CUDA device ``index``, through ``CUDA_VISIBLE_DEVICES`` where it is set (the doctor
    does not initialise CUDA itself: it would be one more process on the GPU)."""
    env = os.environ if env is None else env
    items = [v.strip() for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(items):
        return (None, int(items[index])) if items[index].isdigit() else (items[index], index)
    return None, index


def read_gpu(nvml: Any, handle: Any) -> dict[str, Any]:
    """One GPU's state through pynvml: :class:`profiler.devices.NvmlMonitor`'s reading (clocks, temperature,
    power, throttle reasons) plus compute processes (pids), persistence mode and the maximum SM clock. A counter
    the driver does not expose is left out."""
    from profiler.devices import NvmlMonitor

    mon = NvmlMonitor(handle, nvml)
    out = mon.read()
    procs = mon._try(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle))
    if procs is not None:
        out["processes"] = sorted(int(p.pid) for p in procs)
    mode = mon._try(lambda: nvml.nvmlDeviceGetPersistenceMode(handle))
    if mode is not None:
        out["persistence"] = bool(mode)
    top = mon._try(lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM))
    if top is not None:
        out["max_sm_clock_mhz"] = top
    return out


def gpu_checks(readings: Sequence[Mapping[str, Any]], own_pids: Sequence[int] = ()) -> list[Check]:
    """Checks from :func:`read_gpu` readings taken before, during and after the probe: slowdown reasons
    (before only: warn; still after: fail), other processes computing on the GPU (fail), persistence mode off
    and an SM clock below its maximum at rest (information)."""
    from profiler.devices import SLOWDOWN_REASONS

    out = []
    have = [r for r in readings if "throttle" in r]
    if not have:
        out.append(Check("gpu throttling", "info", "throttle reasons cannot be read"))
    else:
        last = sorted(set(have[-1]["throttle"]) & SLOWDOWN_REASONS)
        seen = sorted({t for r in have for t in r["throttle"]} & SLOWDOWN_REASONS)
        if last:
            out.append(Check("gpu throttling", "fail", f"slowing down after the probe: {', '.join(last)}",
                             f"the GPU is slowing down ({', '.join(last)}): timings are of a throttled GPU"))
        elif seen:
            out.append(Check("gpu throttling", "warn", f"slowed down during the probe: {', '.join(seen)}",
                             f"the GPU slowed down during the probe ({', '.join(seen)})"))
        else:
            out.append(Check("gpu throttling", "ok", "no slowdown reason active"))
    have = [r for r in readings if "processes" in r]
    if not have:
        out.append(Check("gpu processes", "info", "compute processes cannot be read"))
    else:
        others = sorted({p for r in have for p in r["processes"]} - {os.getpid(), *own_pids})
        if others:
            pids = ", ".join(map(str, others[:8])) + (" ..." if len(others) > 8 else "")
            out.append(Check("gpu processes", "fail", f"{len(others)} other compute process(es): pid {pids}",
                             f"other processes compute on the GPU (pid {pids}): they share it with the blocks"))
        else:
            out.append(Check("gpu processes", "ok", "no other compute process"))
    modes = [r["persistence"] for r in readings if "persistence" in r]
    if modes:
        mode = all(modes)
        out.append(Check("gpu persistence", "ok" if mode else "info", f"persistence mode {'on' if mode else 'off'}"
                         + ("" if mode else " (the driver may re-initialise the GPU when it falls idle)")))
    clocks = [(r["sm_clock_mhz"], r["max_sm_clock_mhz"]) for r in readings
              if "sm_clock_mhz" in r and r.get("max_sm_clock_mhz")]
    if clocks:
        sm, top = clocks[0]
        out.append(Check("gpu clocks", "info" if sm < top else "ok",
                         f"SM clock {sm} MHz, max {top} MHz" + (" (below its max at rest)" if sm < top else "")))
    return out


def _open_gpu(device: Any, nvml: Any) -> tuple[Any, Any] | Check:
    from profiler.devices import NvmlMonitor

    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return Check("gpu", "info", "pynvml is not installed: clocks, throttling and other GPU processes "
                         "cannot be read")
    uuid, index = _nvml_target(int(getattr(device, "index", 0)))
    mon = NvmlMonitor.open(uuid, index, nvml=nvml)
    if mon is None:
        return Check("gpu", "info", "NVML cannot be opened: clocks, throttling and other GPU processes cannot "
                     "be read")
    return nvml, mon.handle


# -- verdict and report -------------------------------------------------------------------------------------------
def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def verdict_of(checks: Sequence[Check], ceiling: Any, probe_error: str | None = None, *,
               worst: str | None = None) -> tuple[str, list[str]]:
    """The verdict and its reasons (one line each, naming the reading and the threshold); see the module
    docstring. ``ceiling`` is the probe's :class:`acquisition.noise.NoiseCeiling` (``None`` if it failed);
    ``worst`` names the configuration that differed most."""
    reasons = [f"{c.name}: {c.reason or c.reading}" for c in checks if c.status in ("warn", "fail")]
    if probe_error is not None or ceiling is None:
        return "unusable", [probe_error or "the probe measured nothing", *reasons]
    probe = []
    if ceiling.median_diff > MAX_MEDIAN_DIFF:
        probe.append(f"probe: median difference between two fresh processes {100 * ceiling.median_diff:.1f} %, "
                     f"above {100 * MAX_MEDIAN_DIFF:.0f} %")
    if ceiling.worst_diff > MAX_WORST_DIFF:
        which = f" ({worst})" if worst else ""
        probe.append(f"probe: worst difference between two fresh processes {100 * ceiling.worst_diff:.1f} %"
                     f"{which}, above {100 * MAX_WORST_DIFF:.0f} %")
    if _finite(ceiling.spearman) is not None and ceiling.spearman < MIN_SPEARMAN:
        probe.append(f"probe: Spearman {ceiling.spearman:.4f} between the two runs, below {MIN_SPEARMAN}")
    if any(c.status == "fail" and c.name in BUSY_CHECKS for c in checks):
        return "busy", reasons + probe
    if probe or reasons:
        return "noisy", reasons + probe
    return "ok", []


@dataclass
class DoctorReport:
    """What :func:`diagnose` found: the verdict and its reasons, every check, the probe's
    :class:`~acquisition.noise.NoiseCeiling` (``None`` when the probe failed) and the wall time."""

    verdict: str
    reasons: list[str]
    checks: list[Check]
    ceiling: Any
    seconds: float
    platform: str | None
    device: str
    probe_family: str = PROBE_FAMILY
    probe_n: int = 0
    placement_noise: float | None = None  # median of the probe measurements' own noise (timing.noise)
    noise_floor_id: int | None = None  # the stored row, when a store was given
    pairs: list[tuple[str, float, float]] = field(default_factory=list)  # (key, first, second min_ms)

    def as_row(self) -> dict[str, Any]:
        """The row :meth:`acquisition.store.Store.record_noise_floor` stores."""
        c = self.ceiling
        return {"verdict": self.verdict, "probe_family": self.probe_family, "probe_n": self.probe_n,
                "median_diff": c.median_diff if c else None, "worst_diff": c.worst_diff if c else None,
                "within10": c.within10 if c else None, "spearman": _finite(c.spearman) if c else None,
                "seconds": self.seconds, "checks": [k.as_dict() for k in self.checks], "reasons": list(self.reasons)}

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (``--json``)."""
        return {**self.as_row(), "platform": self.platform, "device": self.device,
                "placement_noise": self.placement_noise, "noise_floor_id": self.noise_floor_id,
                "thresholds": {"median_diff": MAX_MEDIAN_DIFF, "worst_diff": MAX_WORST_DIFF,
                               "spearman": MIN_SPEARMAN, "load_cores": LOAD_FAIL_CORES},
                "pairs": [{"key": k, "first_ms": a, "second_ms": b} for k, a, b in self.pairs]}

    def describe(self) -> str:
        """The printed text: the checks as a table, the probe's figures, the verdict and its reasons."""
        plat = f" (platform {self.platform})" if self.platform else ""
        lines = [f"doctor on {self.device}{plat}: {self.seconds:.1f} s"]
        rows = [("check", "status", "reading")] + [(c.name, c.status, c.reading) for c in self.checks]
        w0, w1 = (max(len(r[i]) for r in rows) for i in (0, 1))
        lines += [f"  {a.ljust(w0)}  {b.ljust(w1)}  {c}" for a, b, c in rows]
        c = self.ceiling
        if c is not None:
            rho = "n/a" if _finite(c.spearman) is None else f"{c.spearman:.4f}"
            lines.append(f"probe: {c.n} {self.probe_family} blocks measured in two fresh worker processes: median "
                         f"difference {100 * c.median_diff:.1f} % (<= {100 * MAX_MEDIAN_DIFF:.0f} %), worst "
                         f"{100 * c.worst_diff:.1f} % (<= {100 * MAX_WORST_DIFF:.0f} %), "
                         f"{100 * c.within10:.1f} % within +-10 %, Spearman {rho} (>= {MIN_SPEARMAN})")
        lines.append(f"verdict: {self.verdict}")
        lines += [f"  - {r}" for r in self.reasons]
        if self.noise_floor_id is not None:
            lines.append(f"stored as noise floor {self.noise_floor_id} of platform {self.platform}")
        return "\n".join(lines)


# -- the doctor ---------------------------------------------------------------------------------------------------
def _probe_configs(probe_n: int, seed: int) -> tuple[Any, list[dict[str, Any]]]:
    from profiler.families import get_family

    family = get_family(PROBE_FAMILY)
    return family, family.space.sample(probe_n, method="sobol", seed=seed, family=family.name)


@dataclass
class _Probe:
    """The two runs of the probe, who ran them and how it ended."""

    runs: list[list[Any]] = field(default_factory=lambda: [[], []])
    worker_pids: set[int] = field(default_factory=set)
    platform: str | None = None
    fingerprint: dict[str, Any] | None = None
    error: str | None = None

    @property
    def n_noises(self) -> int:
        return len(self.noises())

    def noises(self) -> list[float]:
        return [m.timing.noise for r in self.runs for m in r if getattr(m.timing, "noise", None) is not None]


def _run_probe(factory: Callable[[Any, Any], Any], device: Any, protocol: Any, family: Any, configs: list[Any],
               progress: bool, between_runs: Callable[[], None]) -> _Probe:
    """Measure ``configs`` twice, each time in a fresh worker process; stops at the first failure."""
    from tqdm import tqdm

    from profiler.worker import ProfilerError

    probe = _Probe()
    bar = tqdm(total=2 * len(configs), desc="doctor probe", unit="block", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, mininterval=0.5)
    try:
        for run in range(2):
            try:
                with factory(device, protocol) as prof:  # a fresh worker process per run
                    probe.platform = probe.platform or prof.platform_id
                    probe.fingerprint = probe.fingerprint or getattr(prof, "fingerprint", None)
                    for cfg in configs:
                        with contextlib.suppress(Exception):
                            if getattr(prof, "pid", None):
                                probe.worker_pids.add(int(prof.pid))
                        m = prof.measure(family, cfg)
                        bar.update(1)
                        if not m.ok:
                            probe.error = f"probe: {family.name} block {m.key} failed in run {run + 1}: {m.reason}"
                            break
                        probe.runs[run].append(m)
                    if run == 0 and probe.error is None:
                        between_runs()
            except ProfilerError as exc:
                probe.error = f"probe: the worker could not run ({exc})"
            if probe.error is not None:
                break
    finally:
        bar.close()
    return probe


def _engine_load(stop: Any) -> None:
    """What the engine does beside a pipelined measurement: fit histogram gradient boosting (one thread) on a
    campaign-sized table, again and again, until ``stop`` is set."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 36)), rng.normal(size=200)
    with threadpool_limits(limits=1):
        while not stop.is_set():
            HistGradientBoostingRegressor(max_iter=50, early_stopping=False).fit(X, y)


def check_interference(factory: Callable[[Any, Any], Any], device: Any, protocol: Any, family: Any,
                       configs: list[Any], progress: bool = False) -> Check:
    """Does an engine fitting beside a measurement move it? Each of ``configs`` is measured four times in one fresh
    worker, alternately alone and with :func:`_engine_load` running in a thread of this process, moved off the
    worker's cores as a pipelined run moves it (:mod:`acquisition.loop.pipeline`). The value is the median over
    the blocks of (with the load / alone) - 1 of their fastest time; beyond :data:`INTERFERENCE_LIMIT` either way,
    ``pipeline=auto`` runs one step after the other on this platform. Always ``info``: it is about what ``run``
    does, not about the noise floor. No core to spare: pipelining is off anyway, nothing is measured."""
    import threading

    from tqdm import tqdm

    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    if len(allowed) <= int(getattr(device, "threads", 1)):
        return Check("interference", "info", "not measured: the engine has no core of its own, so run does not "
                     "pipeline on this machine")
    alone: list[list[float]] = [[] for _ in configs]
    loaded: list[list[float]] = [[] for _ in configs]
    bar = tqdm(total=4 * len(configs), desc="doctor interference", unit="block", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    try:
        with factory(device, protocol) as prof:
            prof.measure(family, configs[0])  # the worker started: its cores are known
            pid = getattr(prof, "pid", None)
            spare = allowed - (set(os.sched_getaffinity(pid)) if pid and hasattr(os, "sched_getaffinity") else set())
            for rnd in range(4):
                busy = rnd in (1, 2)  # alone, loaded, loaded, alone: a drift over the rounds cancels out
                stop = threading.Event()
                load = threading.Thread(target=_engine_load, args=(stop,), daemon=True)
                with _on_cores(spare if busy else None):
                    if busy:
                        load.start()
                    for i, cfg in enumerate(configs):
                        m = prof.measure(family, cfg)
                        bar.update(1)
                        if m.ok:
                            (loaded if busy else alone)[i].append(m.timing.min_ms)
                    stop.set()
                    if busy:
                        load.join()
    except Exception as e:  # a probe that cannot run says so; the noise floor above stands
        return Check("interference", "info", f"not measured: {e}")
    finally:
        bar.close()
    ratios = [float(np.median(b) / np.median(a)) for a, b in zip(alone, loaded, strict=True) if a and b]
    if not ratios:
        return Check("interference", "info", "not measured: no block measured")
    shift = float(np.median(ratios)) - 1.0
    verdict = ("run pipelines on this platform" if abs(shift) <= INTERFERENCE_LIMIT
               else "run steps one after the other on this platform (--pipeline on overrides)")
    return Check("interference", "info", f"an engine fitting on another core moved the measurements by "
                 f"{100 * shift:+.1f} % (median of {len(ratios)} blocks; limit ±{100 * INTERFERENCE_LIMIT:.0f} %): "
                 f"{verdict}", value=shift)


@contextlib.contextmanager
def _on_cores(cores: set[int] | None) -> Any:
    """This process on ``cores`` for the block (``None`` or empty: unchanged), its cores back afterwards."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        yield
        return
    saved = set(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def _probe_result(probe: _Probe, family: Any) -> tuple[float | None, Any, list[tuple[str, float, float]], str | None]:
    """The median placement noise, the two runs' ceiling, their (key, first, second) pairs and the worst pair."""
    from profiler.repeatability import ceiling_of

    noises = probe.noises()
    placement = float(np.median(noises)) if noises else None
    ceiling, pairs, worst = None, [], None
    if probe.error is None:
        pairs = [(a.key, a.timing.min_ms, b.timing.min_ms) for a, b in zip(probe.runs[0], probe.runs[1], strict=True)]
        ceiling = ceiling_of(np.array([p[1] for p in pairs]), np.array([p[2] for p in pairs]))
    if pairs:
        k, a, b = max(pairs, key=lambda p: abs(p[2] / p[1] - 1))
        worst = f"{family.name} block {k}: {a:.3g} then {b:.3g} ms"
    return placement, ceiling, pairs, worst


def diagnose(device: Any, *, store: Any = None, probe_n: int = 24, seed: int = 0, progress: bool = True,
             profiler_factory: Callable[[Any, Any], Any] | None = None, protocol: Any = None, root: str = "/",
             snapshot: Callable[[], LoadSnapshot | None] | None = None, nvml: Any = None,
             memory: Callable[[], Sequence[float]] | None = None) -> DoctorReport:
    """Check this machine and measure its noise floor on ``device``; see the module docstring.

    ``device`` is a :class:`profiler.devices.Device` or a spec (``"cpu"``). ``profiler_factory(device, protocol)``
    makes the worker of each run (default :class:`profiler.worker.Profiler`; each ``with`` block is a fresh
    process); ``protocol`` defaults to :class:`~profiler.protocol.AdaptiveProtocol`. ``root`` is where ``/proc``
    and ``/sys`` are read, ``snapshot`` takes the load readings, ``memory`` the memory-bound probe's window
    minima (:func:`memory_windows`) and ``nvml`` is the pynvml module (tests pass stand-ins). With ``store`` the
    result is stored with the platform (:meth:`Store.record_noise_floor`).
    """
    from profiler.devices import parse_device
    from profiler.protocol import AdaptiveProtocol
    from profiler.worker import Profiler

    if isinstance(probe_n, bool) or not isinstance(probe_n, int) or probe_n < 2:
        raise ValueError(f"probe_n={probe_n!r} is not allowed: expected an integer >= 2")
    t_start = time.perf_counter()
    device = parse_device(device) if isinstance(device, str) else device
    protocol = protocol if protocol is not None else AdaptiveProtocol()
    factory = profiler_factory or Profiler
    take = snapshot or take_snapshot
    family, configs = _probe_configs(probe_n, seed)

    checks = [check_threads(device), check_transparent_hugepages(root)]
    gpu: tuple[Any, Any] | None = None
    gpu_readings: list[dict[str, Any]] = []
    if getattr(device, "kind", "cpu") == "cuda":
        opened = _open_gpu(device, nvml)
        if isinstance(opened, Check):
            checks.append(opened)
        else:
            gpu = opened
            gpu_readings.append(read_gpu(*gpu))
    freq = [read_cpufreq(root)]
    before = take()
    if memory is None:
        memory = memory_windows
    memory_check = check_memory(memory())

    def between_runs() -> None:  # the clocks and the GPU's state while the probe runs
        freq.append(read_cpufreq(root))
        if gpu is not None:
            gpu_readings.append(read_gpu(*gpu))

    probe = _run_probe(factory, device, protocol, family, configs, progress, between_runs)
    after = take()
    freq.append(read_cpufreq(root))
    if gpu is not None:
        gpu_readings.append(read_gpu(*gpu))

    checks = [check_load(before, after), check_steal(before, after), memory_check, check_frequency(freq), *checks]
    if getattr(device, "kind", "cpu") == "cpu" and probe.error is None:  # after the load readings: it loads a core
        checks.append(check_interference(factory, device, protocol, family, configs[:INTERFERENCE_N], progress))
    if gpu is not None:
        checks += gpu_checks(gpu_readings, probe.worker_pids)
    placement, ceiling, pairs, worst = _probe_result(probe, family)
    checks.append(Check("placement noise", "info",
                        f"median {100 * placement:.1f} % between a measurement's placements ({probe.n_noises} "
                        "measurements)" if placement is not None else "not estimated (one placement per measurement)"))
    error, platform, fingerprint = probe.error, probe.platform, probe.fingerprint
    verdict, reasons = verdict_of(checks, ceiling, error, worst=worst)
    report = DoctorReport(verdict=verdict, reasons=reasons, checks=checks, ceiling=ceiling,
                          seconds=time.perf_counter() - t_start, platform=platform, device=device.spec,
                          probe_family=family.name, probe_n=len(configs), placement_noise=placement, pairs=pairs)
    if store is not None and platform is not None:
        store.ensure_platform(platform, fingerprint or {"kind": device.kind}, device.spec)
        report.noise_floor_id = store.record_noise_floor(platform, report.as_row())
    return report
