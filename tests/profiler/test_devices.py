"""Devices: parsing, fingerprints, and the GPU code paths (CUDA-event timing, pynvml readings) on fakes, plus
``gpu``-marked tests that run them for real where a CUDA device is present."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pytest
import torch

from profiler.devices import (
    CpuDevice,
    CudaDevice,
    CudaEventTimer,
    DeviceError,
    NvmlMonitor,
    parse_device,
    platform_id,
    platform_label,
)
from profiler.worker import _throttled

HAS_CUDA = torch.cuda.is_available()


def test_parse_device() -> None:
    assert parse_device("cpu") == CpuDevice(threads=1)
    assert parse_device("cpu", threads=2).threads == 2
    assert parse_device("CUDA:1") == CudaDevice(index=1)
    assert parse_device("cuda").spec == "cuda:0"
    assert parse_device("auto").kind == ("cuda" if HAS_CUDA else "cpu")
    for bad in ("tpu", "cpu:0", "cuda:x", "", "auto:1"):
        with pytest.raises(DeviceError, match=repr(bad)):
            parse_device(bad)
    with pytest.raises(DeviceError, match="threads"):
        parse_device("cuda:0", threads=2)


def test_dtype_and_batch_are_checked_and_name_the_platform() -> None:
    dev = parse_device("cpu", dtype="bfloat16", batch_size=8)
    assert (dev.dtype, dev.batch_size, dev.torch_dtype) == ("bfloat16", 8, torch.bfloat16)
    for bad in ("int8", "fp32", ""):
        with pytest.raises(DeviceError, match=f"dtype={bad!r}"):
            parse_device("cpu", dtype=bad)
    for bad in (0, -1, 4097, 2.5, True):
        with pytest.raises(DeviceError, match=f"batch_size={bad!r}"):
            parse_device("cpu", batch_size=bad)  # type: ignore[arg-type]
    fp = dev.fingerprint()
    assert (fp["dtype"], fp["batch_size"]) == ("bfloat16", 8)
    assert platform_id(fp) != platform_id(CpuDevice().fingerprint())
    assert platform_label(fp).endswith("1 thread, bfloat16, batch 8")
    assert platform_label({"gpu": "NVIDIA H200", "dtype": "float16", "batch_size": 32}) == \
        "NVIDIA H200, float16, batch 32"


@pytest.mark.slow
def test_worker_hands_blocks_the_devices_dtype_and_batch() -> None:
    """The block and its input reach the timed forward in the device's dtype and batch (the block raises
    otherwise), so a bfloat16 or batch-8 platform measures what its fingerprint says."""
    from profiler.protocol import FixedProtocol
    from profiler.worker import Profiler
    from tests.profiler.dtype_families import EXPECT

    for dtype, batch in (("bfloat16", 3), ("float32", 1)):
        with Profiler(parse_device("cpu", dtype=dtype, batch_size=batch), FixedProtocol(repeats=3),
                      timeout_s=300) as prof:
            good = prof.measure(EXPECT, {"dtype": dtype, "batch": batch})
            assert good.ok, good.reason
            other = "float32" if dtype == "bfloat16" else "bfloat16"
            bad = prof.measure(EXPECT, {"dtype": other, "batch": batch})
            assert not bad.ok and f"got input torch.{dtype} batch {batch}" in bad.reason


def test_cpu_thread_range_is_checked() -> None:
    with pytest.raises(DeviceError, match="threads=999"):
        CpuDevice(threads=999).check_available()
    CpuDevice(threads=1).check_available()


@pytest.mark.skipif(HAS_CUDA, reason="checks the error on a machine without a GPU")
def test_cuda_without_gpu_is_refused() -> None:
    with pytest.raises(DeviceError, match="cuda:0"):
        CudaDevice(index=0).check_available()


def test_cpu_fingerprint_and_platform_id() -> None:
    dev = CpuDevice(threads=1)
    fp = dev.fingerprint()
    for key in ("kind", "torch", "dtype", "batch_size", "cpu_model", "threads", "measurement_version"):
        assert key in fp
    assert platform_id(fp) == platform_id(dict(reversed(list(fp.items()))))  # order-independent
    assert platform_id(fp) != platform_id({**fp, "threads": 2})
    assert dev.worker_env()["OMP_NUM_THREADS"] == "1"


# -- CUDA-event timer logic with fake events --------------------------------------------------------------------
class FakeEvent:
    clock = 0.0
    log: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.t: float | None = None

    def record(self) -> None:
        FakeEvent.log.append("record")
        self.t = FakeEvent.clock

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.t is not None and end.t is not None, "read before both events were recorded"
        return end.t - self.t


def test_cuda_event_timer_pairs_events_and_syncs_per_chunk() -> None:
    FakeEvent.clock, FakeEvent.log = 0.0, []
    syncs = []
    durations = iter([1.0, 2.0, 3.0, 4.0, 5.0])

    def fn() -> None:
        FakeEvent.log.append("fn")
        FakeEvent.clock += next(durations)

    timer = CudaEventTimer(FakeEvent, lambda: syncs.append(len(FakeEvent.log)), sync_every=2)
    out = timer.time(fn, 5)
    assert out == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert FakeEvent.log[:6] == ["record", "fn", "record", "record", "fn", "record"]
    assert len(syncs) == 3  # chunks of 2, 2, 1: no synchronisation between back-to-back invocations


# -- pynvml readings with a fake module -------------------------------------------------------------------------
class FakeNvml:
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, throttle: int = 0x1 | 0x20, fail: tuple[str, ...] = ()) -> None:
        self.throttle, self.fail, self.inited = throttle, fail, False

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise RuntimeError(f"{name} not supported")

    def nvmlInit(self) -> None:
        self.inited = True

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        assert uuid.startswith("GPU-")
        return f"h:{uuid}"

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"h:{i}"

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"580.1"

    def nvmlDeviceGetClockInfo(self, h: str, kind: int) -> int:
        self._maybe_fail("clock")
        return 1980 if kind == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, h: str, kind: int) -> int:
        return 41

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        self._maybe_fail("power")
        return 123456

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: str) -> int:
        return self.throttle


def test_nvml_monitor_reads_and_decodes() -> None:
    fake = FakeNvml()
    mon = NvmlMonitor.open("1234-abcd", 0, nvml=fake)
    assert mon is not None and fake.inited and mon.handle == "h:GPU-1234-abcd"
    r = mon.read()
    assert r == {"sm_clock_mhz": 1980, "mem_clock_mhz": 2619, "temperature_c": 41, "power_w": 123.456,
                 "throttle": ["gpu_idle", "sw_thermal_slowdown"]}
    assert mon.driver_version() == "580.1"


def test_nvml_monitor_tolerates_missing_counters() -> None:
    mon = NvmlMonitor.open(None, 3, nvml=FakeNvml(fail=("power", "clock")))
    assert mon is not None and mon.handle == "h:3"
    r = mon.read()
    assert "power_w" not in r and "sm_clock_mhz" not in r and r["temperature_c"] == 41


def test_nvml_unavailable_gives_no_monitor() -> None:
    class Broken:
        def nvmlInit(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    assert NvmlMonitor.open(None, 0, nvml=Broken()) is None


def test_throttle_during_measurement_is_detected() -> None:
    state: dict[str, Any] = {"before": {"throttle": ["gpu_idle"]}, "after": {"throttle": ["hw_thermal_slowdown"]}}
    assert _throttled(state) == ["hw_thermal_slowdown"]
    assert _throttled({"before": {"throttle": ["gpu_idle"]}, "after": {}}) == []


# -- real GPU ---------------------------------------------------------------------------------------------------
gpu = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")


@pytest.mark.gpu
@gpu
def test_cuda_event_timer_on_gpu() -> None:
    x = torch.randn(2048, 2048, device="cuda")
    out = CudaEventTimer().time(lambda: x @ x, 5)
    assert len(out) == 5 and all(d > 0 for d in out)


@pytest.mark.gpu
@gpu
def test_cuda_worker_measures_and_records_nvml_state() -> None:
    from profiler.families import get_family
    from profiler.protocol import AdaptiveProtocol
    from profiler.worker import Profiler

    fam = get_family("mbconv")
    cfg = {"input_hw": 56, "cin": 32, "cout": 32, "expansion": 6, "kernel": 3, "stride": 1, "se": True,
           "act": "hswish"}
    with Profiler("cuda:0", AdaptiveProtocol(min_seconds=0.05)) as prof:
        m = prof.measure(fam, cfg)
        fp = prof.fingerprint
    assert m.ok and m.timing.min_ms > 0
    assert fp["kind"] == "cuda" and fp["gpu"] and fp["timing"] == "cuda-events"
    assert "before" in m.device_state and "sm_clock_mhz" in m.device_state["before"]


@pytest.mark.gpu
@gpu
def test_cuda_out_of_memory_is_a_failed_measurement() -> None:
    from profiler.worker import Profiler
    from tests.profiler.faulty_families import GPU_HOG, SLEEP

    with Profiler("cuda:0") as prof:
        m = prof.measure(GPU_HOG, {"ms": 1})
        assert m.status == "failed" and m.reason.startswith("out of memory")
        assert prof.measure(SLEEP, {"ms": 1}).ok  # the worker survives a CUDA out-of-memory


def test_cores_to_pin_start_at_the_current_core_and_wrap() -> None:
    from profiler.devices import _current_cpu, cores_to_pin

    assert cores_to_pin({0, 1, 2, 3}, 1, 1) == {1}
    assert cores_to_pin({0, 1, 2, 3}, 3, 2) == {3, 0}
    assert cores_to_pin({4, 6}, 5, 1) == {6}  # the current core not allowed: the last ones
    assert cores_to_pin({0, 1}, 0, 8) == {0, 1}  # never more than allowed
    assert _current_cpu() in os.sched_getaffinity(0)  # a core this process may run on


@pytest.mark.slow
def test_a_cpu_worker_pins_itself_unless_told_not_to() -> None:
    import os
    import subprocess
    import sys

    code = ("import os; from profiler.devices import CpuDevice; CpuDevice(pin={pin}).setup(); "
            "print(len(os.sched_getaffinity(0)))")
    n_all = len(os.sched_getaffinity(0))
    out = {pin: subprocess.run([sys.executable, "-c", code.format(pin=pin)], capture_output=True, text=True,
                               check=True).stdout.strip() for pin in (True, False)}
    assert out[True] == "1" and out[False] == str(n_all)
