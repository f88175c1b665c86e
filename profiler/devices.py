"""Devices: where blocks run, how they are timed, and the fingerprint that names a platform.

``parse_device("auto" | "cpu" | "cuda" | "cuda:i")`` returns a :class:`Device`. A device is a small picklable
description that is *activated* inside the worker process (:meth:`Device.setup`): the CPU device fixes the
thread count (one by default: measured noise is 2-3x lower than with two), the CUDA device selects the GPU and
times with CUDA events on the current stream. The :meth:`Device.fingerprint` (device model, driver, CUDA/cuDNN
and torch versions, CPU model and thread count, dtype, batch size, measurement-code version) hashes to the
platform id; measurements of different platforms never mix.

Example:
    >>> from profiler.devices import parse_device, platform_id
    >>> dev = parse_device("cpu")
    >>> dev.spec, dev.threads
    ('cpu', 1)
    >>> len(platform_id({"kind": "cpu", "cpu_model": "x"}))
    12
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from profiler.protocol import PROTOCOL_VERSION, CpuTimer, Timer

__all__ = ["CpuDevice", "CudaDevice", "CudaEventTimer", "Device", "DeviceError", "NvmlMonitor", "parse_device",
           "platform_id"]

THROTTLE_REASONS = {  # nvmlClocksEventReason / nvmlClocksThrottleReason bit masks
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting",
}
# reasons that mean the GPU ran slower than it could during a measurement
SLOWDOWN_REASONS = {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                    "hw_power_brake_slowdown"}


class DeviceError(ValueError):
    """An unknown device spec, or a device that is not present on this machine."""


def platform_id(fingerprint: dict[str, Any]) -> str:
    """Stable 12-hex-digit id of a fingerprint (sorted JSON, sha256)."""
    blob = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Device:
    """Base class; see :class:`CpuDevice` and :class:`CudaDevice`."""

    dtype: str = "float32"
    batch_size: int = 1

    kind = "device"

    @property
    def spec(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def torch_dtype(self) -> Any:
        """The ``torch.dtype`` blocks and their inputs are converted to before timing."""
        import torch

        return getattr(torch, self.dtype)

    @property
    def torch_device(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_available(self) -> None:
        """Raise :class:`DeviceError` if this device cannot be used here (called before anything is written)."""

    def worker_env(self) -> dict[str, str]:
        """Environment variables the worker process must start with."""
        return {}

    def setup(self) -> None:
        """Called once inside the worker, before any measurement."""

    def timer(self) -> Timer:
        return CpuTimer()

    def state(self) -> dict[str, Any]:
        """Device readings around a measurement (clocks, temperature, ...); empty where none exist."""
        return {}

    def synchronize(self) -> None:
        """Wait until queued work has finished."""

    def fingerprint(self) -> dict[str, Any]:
        import torch

        # a plain str: a TorchVersion would make unpickling the worker's fingerprint import torch in the engine
        return {"kind": self.kind, "torch": str(torch.__version__), "dtype": self.dtype, "batch_size": self.batch_size,
                "measurement_version": PROTOCOL_VERSION, "python": platform.python_version(),
                "cpu_model": _cpu_model(), "machine": platform.machine()}


def _current_cpu() -> int | None:
    """The CPU this process last ran on (psutil), or None where the platform does not say."""
    import psutil

    try:
        return int(psutil.Process().cpu_num())
    except (AttributeError, psutil.Error, OSError, ValueError):  # cpu_num: Linux, FreeBSD, SunOS only
        return None


def cores_to_pin(allowed: set[int] | list[int], current: int | None, n: int) -> set[int]:
    """``n`` cores of ``allowed``, starting at ``current`` (the core the scheduler chose) and wrapping around.

    Example:
        >>> sorted(cores_to_pin({0, 1, 2, 3}, 2, 3))
        [0, 2, 3]
        >>> sorted(cores_to_pin({0, 1}, None, 1))
        [1]
    """
    cores = sorted(allowed)
    n = max(1, min(int(n), len(cores)))
    start = cores.index(current) if current in cores else len(cores) - n
    return {cores[(start + i) % len(cores)] for i in range(n)}


def pin_to_cores(n: int) -> set[int] | None:
    """Pin this process to ``n`` cores (:func:`cores_to_pin`); returns them, or None where affinity cannot be
    set (not Linux)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        chosen = cores_to_pin(os.sched_getaffinity(0), _current_cpu(), n)
        os.sched_setaffinity(0, chosen)
    except OSError:
        return None
    return chosen


@dataclass(frozen=True)
class CpuDevice(Device):
    """The CPU, with a fixed number of intra-op threads (default 1).

    ``pin`` (default True): the worker pins itself to the core it starts on (and the next ones, for more
    threads), so the scheduler never moves a measurement between cores. Measured (``benchmarks/noise_causes.py``,
    three fresh processes per set-up, alternating): the median difference between processes fell from
    1.1-1.5 % to 0.8-0.9 %; the worst cases did not change (they are the host's: docs/benchmarks/2026-11-30-noise.md).
    """

    threads: int = 1
    pin: bool = True
    kind = "cpu"

    @property
    def spec(self) -> str:
        return "cpu"

    @property
    def torch_device(self) -> str:
        return "cpu"

    def check_available(self) -> None:
        n = os.cpu_count() or 1
        if not 1 <= self.threads <= n:
            raise DeviceError(f"threads={self.threads} is out of range: this machine has 1..{n} CPU threads")

    def worker_env(self) -> dict[str, str]:
        # THP_MEM_ALLOC_ENABLE: PyTorch backs large CPU tensors with transparent huge pages (fewer page faults);
        # thread variables size the OpenMP/MKL pools before torch is imported.
        t = str(self.threads)
        return {"THP_MEM_ALLOC_ENABLE": "1", "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t}

    def setup(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        torch.set_num_interop_threads(1)
        if self.pin:
            pin_to_cores(self.threads)

    def fingerprint(self) -> dict[str, Any]:
        import torch

        fp = super().fingerprint()
        fp.update(threads=self.threads, cpu_count=os.cpu_count(), mkldnn=torch.backends.mkldnn.is_available())
        return fp


class CudaEventTimer:
    """Times each invocation with a pair of CUDA events on the current stream.

    Invocations are queued back to back (no synchronisation between them, the way a network runs); the host
    synchronises once per chunk of ``sync_every`` invocations and reads the event pairs. ``event_factory`` and
    ``synchronize`` default to ``torch.cuda.Event(enable_timing=True)`` and ``torch.cuda.synchronize`` and can
    be replaced (tests use fakes to check the logic on a CPU-only machine).
    """

    def __init__(self, event_factory: Callable[[], Any] | None = None, synchronize: Callable[[], None] | None = None,
                 sync_every: int = 32) -> None:
        if event_factory is None or synchronize is None:
            import torch

            event_factory = event_factory or (lambda: torch.cuda.Event(enable_timing=True))
            synchronize = synchronize or torch.cuda.synchronize
        self._event = event_factory
        self._sync = synchronize
        self.sync_every = max(1, int(sync_every))

    def time(self, fn: Callable[[], Any], k: int) -> list[float]:
        out: list[float] = []
        while len(out) < k:
            m = min(self.sync_every, k - len(out))
            pairs = [(self._event(), self._event()) for _ in range(m)]
            for start, end in pairs:
                start.record()
                fn()
                end.record()
            self._sync()
            out.extend(float(start.elapsed_time(end)) for start, end in pairs)
        return out


class NvmlMonitor:
    """Reads SM/memory clocks, temperature, power and throttle reasons of one GPU through pynvml.

    ``nvml`` is the pynvml module (injectable for tests). Every reading is best effort: a counter the GPU or
    driver does not expose is left out rather than failing the measurement.
    """

    def __init__(self, handle: Any, nvml: Any) -> None:
        self.handle = handle
        self.nvml = nvml

    @classmethod
    def open(cls, uuid: str | None, index: int, nvml: Any = None) -> NvmlMonitor | None:
        try:
            if nvml is None:
                import pynvml as nvml
            nvml.nvmlInit()
            if uuid:
                u = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
                handle = nvml.nvmlDeviceGetHandleByUUID(u)
            else:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            return cls(handle, nvml)
        except Exception:
            return None

    def _try(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:
            return None

    def driver_version(self) -> str | None:
        v = self._try(self.nvml.nvmlSystemGetDriverVersion)
        return v.decode() if isinstance(v, bytes) else v

    def read(self) -> dict[str, Any]:
        n, h = self.nvml, self.handle
        out: dict[str, Any] = {
            "sm_clock_mhz": self._try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            "mem_clock_mhz": self._try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            "temperature_c": self._try(lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            "power_w": None,
            "throttle": None,
        }
        mw = self._try(lambda: n.nvmlDeviceGetPowerUsage(h))
        if mw is not None:
            out["power_w"] = mw / 1000.0
        getter = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            n, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
        mask = self._try(lambda: getter(h)) if getter else None
        if mask is not None:
            out["throttle"] = sorted(name for bit, name in THROTTLE_REASONS.items() if mask & bit)
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class CudaDevice(Device):
    """One CUDA GPU, timed with CUDA events; pynvml state recorded around every measurement."""

    index: int = 0
    kind = "cuda"

    @property
    def spec(self) -> str:
        return f"cuda:{self.index}"

    @property
    def torch_device(self) -> str:
        return f"cuda:{self.index}"

    def check_available(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise DeviceError(f"device {self.spec!r} is not available: no CUDA GPU is visible to torch "
                              f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
        count = torch.cuda.device_count()
        if self.index >= count:
            raise DeviceError(f"device {self.spec!r} is not available: this machine has {count} CUDA device(s) "
                              f"(cuda:0..cuda:{count - 1})")

    def setup(self) -> None:
        import torch

        torch.cuda.set_device(self.index)
        torch.backends.cudnn.benchmark = False
        uuid = str(getattr(torch.cuda.get_device_properties(self.index), "uuid", "") or "")
        object.__setattr__(self, "_nvml", NvmlMonitor.open(uuid or None, self.index))

    def timer(self) -> Timer:
        return CudaEventTimer()

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.index)

    def state(self) -> dict[str, Any]:
        mon = getattr(self, "_nvml", None)
        return mon.read() if mon is not None else {}

    def fingerprint(self) -> dict[str, Any]:
        import torch

        fp = super().fingerprint()
        props = torch.cuda.get_device_properties(self.index)
        mon = getattr(self, "_nvml", None)
        fp.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                  gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                  cudnn=torch.backends.cudnn.version(), driver=mon.driver_version() if mon else None,
                  timing="cuda-events")
        return fp


def platform_label(fingerprint: dict[str, Any]) -> str:
    """A platform named by what it is: device model, threads, dtype and input batch.

    Example:
        >>> platform_label({"kind": "cpu", "cpu_model": "AMD EPYC", "threads": 2, "dtype": "bfloat16",
        ...                 "batch_size": 8})
        'AMD EPYC, 2 threads, bfloat16, batch 8'
        >>> platform_label({"kind": "external", "name": "pixel-8", "runtime": "tflite 2.16", "threads": 4})
        'pixel-8, runtime tflite 2.16, threads 4'
    """
    if fingerprint.get("kind") == "external":  # declared by its user (ask/tell): its name and fields
        fields = [f"{k} {v}" for k, v in sorted(fingerprint.items()) if k not in ("kind", "name")]
        return ", ".join([str(fingerprint.get("name", "external")), *fields])
    parts = [str(fingerprint.get("gpu") or fingerprint.get("cpu_model") or fingerprint.get("kind") or "unknown")]
    if fingerprint.get("threads"):
        t = int(fingerprint["threads"])
        parts.append(f"{t} thread{'s' if t != 1 else ''}")
    parts.append(str(fingerprint.get("dtype", "float32")))
    parts.append(f"batch {fingerprint.get('batch_size', 1)}")
    return ", ".join(parts)


_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")
DTYPES = ("float32", "bfloat16", "float16")
MAX_BATCH = 4096


def parse_device(spec: str, threads: int | None = None, dtype: str = "float32", batch_size: int = 1) -> Device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:i``.

    ``dtype`` (float32, bfloat16 or float16) and ``batch_size`` (the batch of each block's input, 1..4096) are
    part of the platform: a block timed in bfloat16 or on a batch of 8 is another platform's measurement.
    Only syntax is checked here; :meth:`Device.check_available` checks the machine.
    """
    if dtype not in DTYPES:
        raise DeviceError(f"dtype={dtype!r} is not allowed: expected one of {', '.join(DTYPES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise DeviceError(f"batch_size={batch_size!r} is out of range: expected an integer in 1..{MAX_BATCH}")
    m = _SPEC.match(str(spec).strip().lower())
    if not m or (m.group(1) != "cuda" and m.group(2) is not None):
        raise DeviceError(f"device={spec!r} is not allowed: expected auto, cpu, cuda or cuda:N")
    kind, idx = m.group(1), m.group(2)
    if kind == "auto":
        import torch

        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if threads is not None:
            raise DeviceError(f"threads={threads} only applies to the cpu device, not {spec!r}")
        return CudaDevice(index=int(idx or 0), dtype=dtype, batch_size=batch_size)
    return CpuDevice(threads=1 if threads is None else int(threads), dtype=dtype, batch_size=batch_size)
