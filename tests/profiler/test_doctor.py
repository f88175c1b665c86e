"""The doctor (``profiler.doctor``): every check on made-up /proc and /sys readings and a fake NVML, the verdict,
and :func:`diagnose` with a stand-in profiler (ok, noisy, busy, unusable; the stored noise floor). No real load
is generated and no timing value is asserted; one ``gpu`` test reads a real GPU where one is present."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import profiler.doctor as doctor
from acquisition.store import Store
from profiler.devices import CpuDevice, CudaDevice
from profiler.doctor import (
    MAX_MEDIAN_DIFF,
    Check,
    LoadSnapshot,
    check_frequency,
    check_load,
    check_memory,
    check_steal,
    check_threads,
    check_transparent_hugepages,
    diagnose,
    gpu_checks,
    memory_windows,
    read_cpufreq,
    read_gpu,
    take_snapshot,
    verdict_of,
)
from profiler.protocol import Timing
from profiler.repeatability import ceiling_of
from profiler.worker import Measurement, ProfilerError
from tests.profiler.test_devices import HAS_CUDA, FakeNvml

PLATFORM = "d0c70rd0c70r"


def snap(t: float, busy: float, own: float, steal: float = 0.0, cpus: int = 2,
         loadavg: float | None = 0.05) -> LoadSnapshot:
    return LoadSnapshot(wall_s=t, busy_s=busy, steal_s=steal, own_cpu_s=own, cpus=cpus, loadavg=loadavg)


def test_module_example_runs() -> None:
    result = doctest.testmod(doctor, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# -- load and steal time ----------------------------------------------------------------------------------------
def test_a_competing_busy_loop_fails_the_load_check_and_an_idle_machine_passes() -> None:
    # the probe's own worker keeps one core busy for 60 s; a busy loop on the other core adds 58 s
    busy = check_load(snap(0, 1000, 10), snap(60, 1000 + 60 + 58, 70))
    assert busy.status == "fail" and busy.reason == "another process used 0.97 of a core during the probe " \
                                                    "(fail at 0.25)"
    assert "0.97 of a core during the 60 s probe; load average 0.05 before" in busy.reading
    idle = check_load(snap(0, 1000, 10), snap(60, 1000 + 60 + 1.2, 70))  # daemons: 0.02 of a core
    assert idle.status == "ok" and idle.reason is None and "0.02 of a core" in idle.reading
    some = check_load(snap(0, 1000, 10), snap(60, 1000 + 60 + 9, 70))
    assert some.status == "warn" and "0.15 of a core" in some.reason
    two = check_load(snap(0, 0, 0), snap(10, 30, 10))
    assert two.status == "fail" and "2.00 cores" in two.reason
    # accounting jitter can make the others' share slightly negative: it reads as zero
    assert "0.00 of a core" in check_load(snap(0, 100, 0), snap(10, 109.9, 10)).reading
    assert check_load(None, snap(10, 1, 1)).status == "info"


def test_steal_time_is_a_share_of_the_cpus_time() -> None:
    assert check_steal(snap(0, 0, 0), snap(100, 0, 0, steal=0.5)).status == "ok"  # 0.25 %
    warn = check_steal(snap(0, 0, 0), snap(100, 0, 0, steal=4))
    assert warn.status == "warn" and "2.0 % of this VM's CPU time" in warn.reason
    fail = check_steal(snap(0, 0, 0, steal=10), snap(100, 0, 0, steal=30))
    assert fail.status == "fail" and "10.0 %" in fail.reason and "(fail at 5 %)" in fail.reason
    assert check_steal(None, None).status == "info"


def test_a_snapshot_reads_busy_and_steal_seconds_through_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    cpu = SimpleNamespace(user=12.0, nice=1.0, system=3.0, idle=900.0, iowait=0.1, irq=0.5, softirq=0.25,
                          steal=0.4, guest=0.0)
    monkeypatch.setattr(psutil, "cpu_times", lambda: cpu)
    monkeypatch.setattr(psutil, "getloadavg", lambda: (1.73, 1.2, 0.9))
    a = take_snapshot()
    assert a is not None and a.busy_s == pytest.approx(16.75) and a.steal_s == pytest.approx(0.4)
    assert a.loadavg == 1.73 and a.cpus == psutil.cpu_count()
    # a live worker's CPU seconds count as the doctor's own; a pid that is gone counts nothing
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.3: pass\ntime.sleep(30)"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(psutil.Process(busy.pid).cpu_times()[:2]) < 0.3:
            time.sleep(0.05)
        b = take_snapshot(pids=[busy.pid, 2 ** 22 + 1])
        # the seconds are sums of clock ticks: (own + 0.30) - own can come out as 0.2999999999999972
        assert b is not None and b.own_cpu_s - a.own_cpu_s >= 0.3 - 1e-9
    finally:
        busy.kill()
        busy.wait()


def test_a_snapshot_of_this_machine() -> None:
    real = take_snapshot()
    assert real is not None and real.cpus >= 1 and real.own_cpu_s > 0 and real.busy_s > 0


# -- frequency, threads, huge pages ----------------------------------------------------------------------------
def fake_sysfs(root: Path, governor: str | None = "performance", freqs: tuple[int, ...] = (3_000_000, 2_900_000),
               no_turbo: int | None = None, boost: int | None = None, thp: str | None = "always [madvise] never"
               ) -> Path:
    cpu = root / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    if governor is not None:
        for i, f in enumerate(freqs):
            d = cpu / f"cpu{i}" / "cpufreq"
            d.mkdir(parents=True, exist_ok=True)
            (d / "scaling_governor").write_text(governor + "\n")
            (d / "scaling_cur_freq").write_text(f"{f}\n")
            (d / "cpuinfo_max_freq").write_text("3400000\n")
    if no_turbo is not None:
        (cpu / "intel_pstate").mkdir(exist_ok=True)
        (cpu / "intel_pstate" / "no_turbo").write_text(f"{no_turbo}\n")
    if boost is not None:
        (cpu / "cpufreq").mkdir(exist_ok=True)
        (cpu / "cpufreq" / "boost").write_text(f"{boost}\n")
    if thp is not None:
        mm = root / "sys" / "kernel" / "mm" / "transparent_hugepage"
        mm.mkdir(parents=True, exist_ok=True)
        (mm / "enabled").write_text(thp + "\n")
    return root


def test_frequency_check_reads_governors_clocks_and_turbo(tmp_path: Path) -> None:
    ok = fake_sysfs(tmp_path / "ok", no_turbo=1)
    r = read_cpufreq(str(ok))
    assert r["governors"] == ["performance"] and sorted(r["cur_khz"]) == [2_900_000, 3_000_000]
    assert r["max_khz"] == 3_400_000 and r["no_turbo"] == 1
    c = check_frequency([r, read_cpufreq(str(fake_sysfs(tmp_path / "ok2", freqs=(1_200_000,))))])
    assert c.status == "ok" and c.reading == "governor performance; 1.20-3.00 GHz during the probe (max 3.40 GHz)"
    slow = check_frequency([read_cpufreq(str(fake_sysfs(tmp_path / "ps", governor="powersave", no_turbo=0)))])
    assert slow.status == "warn" and "governor powersave, not performance" in slow.reason
    assert "turbo boost is on" in slow.reason and "turbo on" in slow.reading
    boost = check_frequency([read_cpufreq(str(fake_sysfs(tmp_path / "b", boost=1)))])
    assert boost.status == "warn" and boost.reason == "turbo boost is on: timings depend on temperature"
    vm = check_frequency([read_cpufreq(str(fake_sysfs(tmp_path / "vm", governor=None)))])
    assert vm == Check("cpu frequency", "info", "no cpufreq interface (a virtual machine): frequency cannot be read")


def test_thread_check_against_usable_cores_and_the_environment() -> None:
    ok = check_threads(CpuDevice(threads=1), env={"OMP_NUM_THREADS": "1"}, cpu_count=4, affinity={0, 1})
    assert ok == Check("threads", "ok", "1 thread on 2 usable cores of 4")
    over = check_threads(CpuDevice(threads=3), env={}, cpu_count=4, affinity={0, 1})
    assert over.status == "fail" and over.reason.startswith("3 threads on 2 usable cores")
    assert "--threads 2 or fewer" in over.reason
    env = check_threads(CpuDevice(threads=1), env={"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "1"}, cpu_count=2,
                        affinity={0, 1})
    assert env.status == "info" and "OMP_NUM_THREADS=8 in this environment (the worker sets its own)" in env.reading
    assert "MKL" not in env.reading
    assert check_threads(CudaDevice(), env={}, cpu_count=2, affinity={0}).reading == "1 usable core of 2"
    assert check_threads(CpuDevice()).status in ("ok", "info")  # this machine: 1 thread always fits


@pytest.mark.parametrize(("content", "status"), [("always [madvise] never", "ok"), ("[always] madvise never", "ok"),
                                                 ("always madvise [never]", "warn"), (None, "info")])
def test_transparent_huge_pages(tmp_path: Path, content: str | None, status: str) -> None:
    c = check_transparent_hugepages(str(fake_sysfs(tmp_path, governor=None, thp=content)))
    assert c.status == status
    if status == "warn":
        assert "transparent huge pages are off (never)" in c.reason


# -- GPU, on a fake NVML -----------------------------------------------------------------------------------------
class Proc:
    def __init__(self, pid: int) -> None:
        self.pid = pid


class FakeGpu(FakeNvml):
    """``tests.profiler``'s fake pynvml plus compute processes, persistence mode and the maximum clock."""

    def __init__(self, throttle: int = 0x1, pids: tuple[int, ...] = (), persistence: int = 1, **kw: Any) -> None:
        super().__init__(throttle=throttle, **kw)
        self.pids, self.persistence = pids, persistence

    def nvmlDeviceGetComputeRunningProcesses(self, h: str) -> list[Proc]:
        return [Proc(p) for p in self.pids]

    def nvmlDeviceGetPersistenceMode(self, h: str) -> int:
        return self.persistence

    def nvmlDeviceGetMaxClockInfo(self, h: str, kind: int) -> int:
        return 1980


def test_gpu_readings_and_checks() -> None:
    idle = read_gpu(FakeGpu(), "h:0")
    assert idle["processes"] == [] and idle["persistence"] is True and idle["max_sm_clock_mhz"] == 1980
    assert idle["throttle"] == ["gpu_idle"]
    checks = {c.name: c for c in gpu_checks([idle, idle])}
    assert [c.status for c in checks.values()] == ["ok", "ok", "ok", "ok"]  # gpu_idle is no slowdown
    hot = read_gpu(FakeGpu(throttle=0x40), "h:0")
    assert {c.name: c for c in gpu_checks([hot, idle])}["gpu throttling"].status == "warn"
    after = {c.name: c for c in gpu_checks([idle, hot])}["gpu throttling"]
    assert after.status == "fail" and "hw_thermal_slowdown" in after.reason
    shared = read_gpu(FakeGpu(pids=(os.getpid(), 777, 31337), persistence=0), "h:0")
    checks = {c.name: c for c in gpu_checks([idle, shared], own_pids=[777])}
    assert checks["gpu processes"].status == "fail" and "pid 31337" in checks["gpu processes"].reason
    assert "777" not in checks["gpu processes"].reason  # our own worker is no competitor
    assert checks["gpu persistence"] == Check("gpu persistence", "info", "persistence mode off (the driver may "
                                              "re-initialise the GPU when it falls idle)")
    bare = read_gpu(FakeNvml(fail=("clock",)), "h:0")  # no process list, persistence or clocks exposed
    checks = {c.name: c for c in gpu_checks([bare])}
    assert checks["gpu processes"].status == "info" and set(checks) == {"gpu throttling", "gpu processes"}


def test_nvml_target_follows_cuda_visible_devices() -> None:
    assert doctor._nvml_target(0, {}) == (None, 0)
    assert doctor._nvml_target(1, {"CUDA_VISIBLE_DEVICES": "3,5"}) == (None, 5)
    assert doctor._nvml_target(0, {"CUDA_VISIBLE_DEVICES": "GPU-abc"}) == ("GPU-abc", 0)


# -- verdict -----------------------------------------------------------------------------------------------------
def test_verdict_names_each_reading_and_threshold() -> None:
    good = ceiling_of(np.arange(1.0, 13.0), np.arange(1.0, 13.0) * 1.01)
    assert verdict_of([Check("load", "ok", "x"), Check("cpu frequency", "info", "y")], good) == ("ok", [])
    wide = ceiling_of(np.arange(1.0, 13.0), np.r_[np.arange(1.0, 12.0) * 1.03, 12 * 1.2])
    v, reasons = verdict_of([Check("load", "ok", "x")], wide)
    assert v == "noisy" and reasons == ["probe: median difference between two fresh processes 3.0 %, above 2 %",
                                        "probe: worst difference between two fresh processes 20.0 %, above 10 %"]
    v, reasons = verdict_of([Check("load", "fail", "r", "another process used 0.97 of a core")], wide)
    assert v == "busy" and reasons[0] == "load: another process used 0.97 of a core" and len(reasons) == 3
    v, reasons = verdict_of([Check("cpu frequency", "warn", "r", "governor powersave")], good)
    assert v == "noisy" and reasons == ["cpu frequency: governor powersave"]
    v, reasons = verdict_of([Check("load", "fail", "r", "busy")], None, "probe: block k failed in run 1: boom")
    assert v == "unusable" and reasons == ["probe: block k failed in run 1: boom", "load: busy"]
    shuffled = ceiling_of(np.arange(1.0, 13.0), np.arange(1.0, 13.0)[::-1].copy())
    assert any("Spearman" in r and "below 0.995" in r for r in verdict_of([], shuffled)[1])


# -- diagnose with a stand-in profiler ---------------------------------------------------------------------------
class FakeWorker:
    """A stand-in for a fresh worker process: each block measures a latency fixed by its key, times a factor of
    the run (``spread`` wide, seeded by key and run); ``off`` keys are 30 % slower in the second run;
    ``fail_key`` fails; ``broken`` workers cannot start."""

    def __init__(self, device: Any, protocol: Any, *, run: int = 1, spread: float = 0.003, off: int = 0,
                 fail_at: int = 0, broken: bool = False) -> None:
        self.protocol, self.spread, self.off, self.fail_at, self.broken = protocol, spread, off, fail_at, broken
        self.run = run
        self.platform_id, self.fingerprint, self.calls = PLATFORM, {"kind": "cpu", "cpu_model": "fake"}, 0

    def __enter__(self) -> FakeWorker:
        if self.broken:
            raise ProfilerError("the cpu worker died while starting: worker crashed (SIGSEGV)")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def measure(self, family: Any, config: dict[str, Any]) -> Measurement:
        self.calls += 1
        key = family.key(config)
        h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
        ms = 0.2 + (h % 1000) / 50 * float(np.random.default_rng([h, self.run]).lognormal(0.0, self.spread))
        if self.off and self.run == 2 and self.calls % self.off == 0:
            ms *= 1.3
        base = {"family": family.name, "key": key, "config": config, "protocol": "adaptive-v1",
                "platform": self.platform_id}
        if self.fail_at and self.calls == self.fail_at:
            return Measurement(**base, status="failed", cost_s=0.1, reason="RuntimeError: boom")
        t = Timing(min_ms=ms, median_ms=ms * 1.05, p10_ms=ms * 1.01, p90_ms=ms * 1.1, mean_ms=ms * 1.06, n=30,
                   timed_s=ms * 30e-3, warmup_n=2, warmup_s=0.01, stop="stable", spread=1.01, placements=3,
                   noise=0.004 + 0.002 * (self.calls % 2))
        return Measurement(**base, status="ok", cost_s=0.25, timing=t, build_s=0.01)


def fake(**kw: Any):
    """A profiler factory: the n-th worker it makes is run n."""
    made: list[FakeWorker] = []

    def factory(device: Any, protocol: Any) -> FakeWorker:
        made.append(FakeWorker(device, protocol, run=len(made) + 1, **kw))
        return made[-1]

    return factory


def scripted(*snapshots: LoadSnapshot):
    it = iter(snapshots)
    return lambda: next(it)


IDLE = (snap(0, 1000, 10), snap(30, 1000 + 30 + 0.3, 40))
BUSY = (snap(0, 1000, 10), snap(30, 1000 + 30 + 29, 40))


@pytest.fixture
def machine(tmp_path: Path) -> str:
    """A well-set machine: THP on madvise, no cpufreq interface (a VM)."""
    return str(fake_sysfs(tmp_path / "root", governor=None))


def test_a_quiet_repeatable_machine_is_ok_and_stored(tmp_path: Path, machine: str) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        rep = diagnose("cpu", store=store, probe_n=8, seed=3, progress=False, profiler_factory=fake(), root=machine,
                       snapshot=scripted(*IDLE))
        assert rep.verdict == "ok" and rep.reasons == [] and rep.platform == PLATFORM
        assert rep.ceiling.n == 8 and rep.ceiling.median_diff <= MAX_MEDIAN_DIFF and rep.probe_n == 8
        assert rep.placement_noise == pytest.approx(0.005)
        names = [c.name for c in rep.checks]
        assert names == ["load", "steal time", "memory contention", "cpu frequency", "threads", "huge pages",
                         "interference", "placement noise"]
        assert len({k for k, _, _ in rep.pairs}) == 8
        (row,) = store.noise_floors(PLATFORM)
        assert row["id"] == rep.noise_floor_id and row["verdict"] == "ok" and row["probe_family"] == "mbconv"
        assert row["median_diff"] == pytest.approx(rep.ceiling.median_diff) and row["within10"] == 1.0
        assert [c["name"] for c in row["checks"]] == names and row["seconds"] == pytest.approx(rep.seconds)
        assert store.platforms()[0]["fingerprint"]["cpu_model"] == "fake"
        assert store.profiling_seconds(activity="noise_profile") == pytest.approx(rep.seconds)
    text = rep.describe()
    assert "verdict: ok" in text and "probe: 8 mbconv blocks measured in two fresh worker processes" in text
    assert re.search(r"^  load +ok ", text, re.M) and f"stored as noise floor {rep.noise_floor_id}" in text
    assert json.loads(json.dumps(rep.as_dict()))["verdict"] == "ok"


def test_two_fresh_processes_and_the_same_probe_set(machine: str) -> None:
    seen: list[FakeWorker] = []

    def factory(device: Any, protocol: Any) -> FakeWorker:
        seen.append(FakeWorker(device, protocol, run=len(seen) + 1))
        return seen[-1]

    a = diagnose(CpuDevice(), probe_n=5, seed=1, progress=False, profiler_factory=factory, root=machine,
                 snapshot=scripted(*IDLE))
    b = diagnose(CpuDevice(), probe_n=5, seed=1, progress=False, profiler_factory=fake(), root=machine,
                 snapshot=scripted(*IDLE))
    # two fresh processes for the probe, a third for the interference check (a warm-up, then 4 rounds of 5)
    assert len(seen) == 3 and [w.calls for w in seen] == [5, 5, 21]
    assert type(seen[0].protocol).__name__ == "AdaptiveProtocol"  # the default protocol
    assert [k for k, _, _ in a.pairs] == [k for k, _, _ in b.pairs]  # fixed by the seed
    c = diagnose(CpuDevice(), probe_n=5, seed=2, progress=False, profiler_factory=fake(), root=machine,
                 snapshot=scripted(*IDLE))
    assert [k for k, _, _ in c.pairs] != [k for k, _, _ in a.pairs]
    with pytest.raises(ValueError, match="probe_n=1 is not allowed"):
        diagnose("cpu", probe_n=1, profiler_factory=fake())


def test_a_probe_that_does_not_repeat_is_noisy(machine: str) -> None:
    rep = diagnose("cpu", probe_n=12, progress=False, profiler_factory=fake(off=3), root=machine,
                   snapshot=scripted(*IDLE))
    assert rep.verdict == "noisy" and rep.ceiling.worst_diff > 0.25
    (worst,) = [r for r in rep.reasons if r.startswith("probe: worst difference between two fresh processes")]
    assert " % (mbconv block " in worst and " ms), above 10 %" in worst  # names the configuration


def test_a_busy_machine_is_busy_even_when_the_probe_repeats(machine: str) -> None:
    rep = diagnose("cpu", probe_n=6, progress=False, profiler_factory=fake(), root=machine, snapshot=scripted(*BUSY))
    assert rep.verdict == "busy" and rep.ceiling.median_diff <= MAX_MEDIAN_DIFF
    assert rep.reasons == ["load: another process used 0.97 of a core during the probe (fail at 0.25)"]


def test_a_failed_probe_or_a_dead_worker_is_unusable(tmp_path: Path, machine: str) -> None:
    rep = diagnose("cpu", probe_n=6, progress=False, profiler_factory=fake(fail_at=4), root=machine,
                   snapshot=scripted(*IDLE))
    assert rep.verdict == "unusable" and rep.ceiling is None
    assert rep.reasons[0].startswith("probe: mbconv block ") and rep.reasons[0].endswith("in run 1: RuntimeError: boom")
    assert rep.as_row()["median_diff"] is None and "verdict: unusable" in rep.describe()
    with Store(tmp_path / "a.sqlite") as store:
        dead = diagnose("cpu", store=store, probe_n=6, progress=False, profiler_factory=fake(broken=True),
                        root=machine, snapshot=scripted(*IDLE))
        assert dead.verdict == "unusable" and "worker crashed (SIGSEGV)" in dead.reasons[0]
        assert dead.platform is None and store.noise_floors() == []  # no platform to store it with


def test_settings_that_make_timings_depend_on_state_are_named(tmp_path: Path) -> None:
    root = str(fake_sysfs(tmp_path, governor="powersave", thp="always madvise [never]"))
    rep = diagnose("cpu", probe_n=4, progress=False, profiler_factory=fake(), root=root, snapshot=scripted(*IDLE))
    assert rep.verdict == "noisy"
    assert [r.split(":")[0] for r in rep.reasons] == ["cpu frequency", "huge pages"]


def test_a_gpu_shared_with_another_process_is_busy(machine: str) -> None:
    gpu = FakeGpu(pids=(31337,))
    rep = diagnose(CudaDevice(index=0), probe_n=4, progress=False, profiler_factory=fake(), root=machine,
                   snapshot=scripted(*IDLE), nvml=gpu)
    checks = {c.name: c for c in rep.checks}
    assert {"gpu throttling", "gpu processes", "gpu persistence", "gpu clocks"} <= set(checks)
    assert rep.verdict == "busy" and checks["gpu processes"].status == "fail"
    quiet = diagnose(CudaDevice(index=0), probe_n=4, progress=False, profiler_factory=fake(), root=machine,
                     snapshot=scripted(*IDLE), nvml=FakeGpu())
    assert quiet.verdict == "ok" and gpu.inited

    class NoNvml:
        def nvmlInit(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    blind = diagnose(CudaDevice(index=0), probe_n=4, progress=False, profiler_factory=fake(), root=machine,
                     snapshot=scripted(*IDLE), nvml=NoNvml())
    assert {c.name: c for c in blind.checks}["gpu"].status == "info" and blind.verdict == "ok"


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_gpu_checks_read_the_real_gpu() -> None:
    pynvml = pytest.importorskip("pynvml")
    opened = doctor._open_gpu(CudaDevice(index=0), pynvml)
    assert not isinstance(opened, Check), opened
    reading = read_gpu(*opened)
    assert "sm_clock_mhz" in reading and "processes" in reading
    names = {c.name for c in gpu_checks([reading, read_gpu(*opened)])}
    assert {"gpu throttling", "gpu processes"} <= names


@pytest.fixture(autouse=True)
def _steady_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory-bound probe's readings are this machine's: replace them so that verdicts depend on the test."""
    monkeypatch.setattr(doctor, "memory_windows", lambda: [2.0, 2.01, 2.0, 2.02, 2.0, 2.01, 2.0, 2.0])


def test_memory_contention_check() -> None:
    steady = check_memory([2.0, 2.01, 2.0, 2.02, 2.0, 2.01, 2.0, 2.0, 2.03, 2.0])
    assert steady.status == "ok" and "1.0 %" in steady.reading
    shared = check_memory([2.0, 2.2, 2.0, 2.1, 2.3, 2.0, 2.1, 2.2, 2.0, 2.25])
    assert shared.status == "warn" and "shared" in shared.reason and "warn above 5 %" in shared.reason
    busy = check_memory([2.0, 2.8, 2.0, 2.9, 3.0, 2.0, 2.7, 2.6, 2.0, 2.9])
    assert busy.status == "fail" and "fail above 15 %" in busy.reason
    assert check_memory([2.0, float("nan")]).status == "info"


def test_a_contended_memory_system_makes_the_verdict_noisy(machine) -> None:
    rep = diagnose("cpu", probe_n=4, progress=False, profiler_factory=fake(), root=machine,
                   snapshot=scripted(*IDLE), memory=lambda: [2.0, 2.8, 2.0, 2.9, 3.0, 2.0, 2.7, 2.6, 2.0, 2.9])
    assert rep.verdict == "noisy" and any(r.startswith("memory contention:") for r in rep.reasons)


def test_memory_windows_are_minima_of_short_windows() -> None:
    w = memory_windows(seconds=0.05, window_s=0.01, mib=1)  # the real probe (imported before the stand-in)
    assert len(w) >= 1 and all(np.isfinite(x) and x > 0 for x in w)


class SlowerBesideAnEngine(FakeWorker):
    """A worker whose blocks read 10 % slower while the interference check's engine thread runs."""

    def measure(self, family: Any, config: dict[str, Any]) -> Measurement:
        import dataclasses
        import threading

        m = super().measure(family, config)
        if any(t.name != "MainThread" and t.is_alive() and "_engine_load" in repr(getattr(t, "_target", ""))
               for t in threading.enumerate()):
            m = dataclasses.replace(m, timing=dataclasses.replace(m.timing, min_ms=m.timing.min_ms * 1.1))
        return m


def test_interference_says_whether_run_pipelines_on_this_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    from profiler.doctor import INTERFERENCE_LIMIT, check_interference
    from profiler.families import get_family

    fam = get_family("mbconv")
    cfgs = fam.space.sample(4, seed=0, family="mbconv")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cores: None, raising=False)
    quiet = check_interference(fake(), CpuDevice(), None, fam, cfgs)
    assert quiet.name == "interference" and quiet.status == "info" and quiet.value == pytest.approx(0.0)
    assert "run pipelines on this platform" in quiet.reading
    moved = check_interference(lambda d, p: SlowerBesideAnEngine(d, p, run=1), CpuDevice(), None, fam, cfgs)
    assert moved.value == pytest.approx(0.1) and moved.value > INTERFERENCE_LIMIT
    assert "+10.0 %" in moved.reading and "one after the other" in moved.reading
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    alone = check_interference(fake(), CpuDevice(), None, fam, cfgs)
    assert alone.value is None and "no core of its own" in alone.reading
