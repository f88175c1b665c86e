"""The worker process contract: failures become failed measurements with a reason, the worker restarts, the
caller never dies; unstable timings are re-measured in a fresh worker.

No assertion here depends on timing or machine load: timeouts are far above any job unless the timeout is what
the test is about (then the block hangs for ever), a worker is killed once it has announced that it is mid-job
or waited for until it is gone, and whether a timing is unstable is scripted in the parent (the rules that flag
a real timing are tested with scripted samples in ``test_protocol.py``). Latencies are only bounded below: a
sleep never returns early, while a loaded machine can stretch any call.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from profiler.families import get_family
from profiler.protocol import AdaptiveProtocol, FixedProtocol, Timing
from profiler.worker import Profiler, ProfilerError
from tests.profiler import faulty_families as ff

pytestmark = pytest.mark.slow  # every test here spawns worker processes

FAST = AdaptiveProtocol(min_repeats=10, min_seconds=0.02, max_seconds=0.5)
# far above any job here (on a loaded machine a 0.5 s job can take many seconds); only a hang reaches it
NO_TIMEOUT_S = 300.0
# how long a test waits for something that happens within milliseconds on an idle machine
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def prof():
    p = Profiler("cpu", FAST, timeout_s=NO_TIMEOUT_S, memory_limit=2 * 2**30)
    p.start()
    yield p
    p.close()


def _ok_after(prof: Profiler) -> None:
    m = prof.measure(ff.SLEEP, {"ms": 1})
    assert m.ok, m.reason
    assert m.key == ff.SLEEP.key({"ms": 1}) and m.timing.min_ms >= 1.0  # a 1 ms sleep never takes less


def _wait_until(what: str, done: Callable[[], bool]) -> None:
    """Poll ``done`` until it holds; fail (naming ``what``) only after :data:`DEADLINE_S`."""
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_S:g} s"
        time.sleep(0.01)


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[Timing]]:
    """Script whether each attempt's timing counts as unstable, as the parent process sees it.

    ``verdicts("why", None)``: the first attempt is unstable because "why", the second stable (the last verdict
    repeats). Returns the timings judged, in order. The worker measures for real; only the verdict, which real
    samples would make depend on the machine's load, is scripted."""
    judged: list[Timing] = []

    def script(*reasons: str | None) -> list[Timing]:
        def unstable_reason(timing: Timing, max_spread: float) -> str | None:
            judged.append(timing)
            return reasons[min(len(judged), len(reasons)) - 1]

        monkeypatch.setattr(Timing, "unstable_reason", unstable_reason)
        return judged

    return script


def test_measures_a_real_block(prof: Profiler) -> None:
    fam = get_family("mbconv")
    cfg = {"input_hw": 14, "cin": 32, "cout": 32, "expansion": 3, "kernel": 3, "stride": 1, "se": True,
           "act": "hswish"}
    m = prof.measure(fam, cfg)
    # a loaded machine may need a retry in a fresh worker, or leave the timing flagged unstable (with its reason):
    # neither depends on the code under test (the retry logic is tested with scripted timings)
    assert m.ok and m.attempts >= 1 and (m.stable or m.unstable_reason)
    t = m.timing
    assert 0 < t.min_ms <= t.p10_ms <= t.median_ms <= t.p90_ms
    assert t.n >= FAST.min_repeats and t.timed_s >= FAST.min_seconds
    assert m.cost_s >= t.timed_s + t.warmup_s
    assert m.key == fam.key(cfg) and m.protocol == FAST.id and m.platform == prof.platform_id


def test_sleep_block_latency_is_measured(prof: Profiler) -> None:
    m = prof.measure(ff.SLEEP, {"ms": 5})
    assert m.ok and m.key == ff.SLEEP.key({"ms": 5})
    assert m.timing.min_ms >= 5.0  # never below the sleep (a loaded machine only adds to it)


def test_exception_becomes_failed_measurement_without_restart(prof: Profiler) -> None:
    pid = prof.pid
    m = prof.measure(ff.RAISE, {"ms": 7})
    assert m.status == "failed" and m.timing is None
    assert "ValueError: broken block 7" in m.reason
    assert prof.pid == pid  # an exception does not cost a restart
    _ok_after(prof)


def test_hang_times_out_and_worker_restarts() -> None:
    # the block hangs for ever: whatever the load, only the timeout can end the job, and not before it expires
    with Profiler("cpu", FAST, timeout_s=3) as prof:
        pid = prof.pid
        m = prof.measure(ff.HANG, {"ms": 1})
        assert m.status == "failed" and m.reason == "timeout: no result after 3 s (worker restarted)"
        assert m.cost_s >= 3  # the whole wait is charged
        prof.timeout_s = NO_TIMEOUT_S  # the hang is over; the next job must not time out on a loaded machine
        _ok_after(prof)
        assert prof.pid != pid


@pytest.mark.parametrize("family, signame", [(ff.SEGFAULT, "SIGSEGV"), (ff.ABORT, "SIGABRT")])
def test_crash_becomes_failed_measurement(prof: Profiler, family, signame: str) -> None:
    pid = prof.pid
    m = prof.measure(family, {"ms": 1})
    assert m.status == "failed"
    assert signame in m.reason and "crashed" in m.reason
    _ok_after(prof)
    assert prof.pid != pid


def test_over_allocation_is_out_of_memory() -> None:
    # its own worker with a generous timeout: filling 2 GiB can take seconds on a loaded machine (CI), and a
    # timeout would hide the out-of-memory reason this test is about
    with Profiler("cpu", FAST, timeout_s=NO_TIMEOUT_S, memory_limit=2 * 2**30) as p:
        m = p.measure(ff.OVERALLOCATE, {"ms": 1})
        assert m.status == "failed"
        assert m.reason.startswith("out of memory"), m.reason
        _ok_after(p)


def test_worker_killed_mid_job(tmp_path: Path) -> None:
    # the block announces itself, then hangs: the kill lands mid-job however slowly the machine gets there
    started = tmp_path / "started"
    with Profiler("cpu", FAST, timeout_s=NO_TIMEOUT_S) as p:
        pid = p.pid

        def kill_once_started() -> None:
            _wait_until("the block's first call", lambda: started.exists() and started.read_text().strip() != "")
            os.kill(int(started.read_text().split()[0]), signal.SIGKILL)

        killer = threading.Thread(target=kill_once_started, daemon=True)
        killer.start()
        m = p.measure(ff.AnnouncedHang(str(started)), {"ms": 1})
        killer.join()
        assert int(started.read_text().split()[0]) == pid  # the kill hit the worker that ran the job
        assert m.status == "failed" and m.reason == "worker killed by SIGKILL (out of memory, or killed from outside)"
        assert m.cost_s > 0
        _ok_after(p)  # restarted transparently
        assert p.pid not in (None, pid)


def test_worker_killed_between_jobs_is_restarted(prof: Profiler) -> None:
    _ok_after(prof)  # a live worker, whatever the tests before left behind
    pid = prof.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_until("the killed worker's exit", lambda: prof.pid is None)  # is_alive() reaps it
    _ok_after(prof)
    assert prof.pid not in (None, pid)


def test_unstable_timing_is_remeasured_in_a_fresh_worker(verdicts) -> None:
    judged = verdicts("spread p10/min=4.00 above 1.25 (bimodal timings)", None)
    with Profiler("cpu", FAST, timeout_s=NO_TIMEOUT_S) as prof:
        pid = prof.pid
        m = prof.measure(ff.SLEEP, {"ms": 1})
        assert prof.pid not in (None, pid)  # the second attempt ran in a fresh process
    assert len(judged) == 2 and m.ok and m.attempts == 2 and m.stable and m.unstable_reason is None
    assert m.timing is judged[1]  # the stable (second) attempt is kept
    assert judged[1].warmup_s >= FAST.with_more_warmup().warmup_seconds  # with the longer warm-up of a retry
    first, second = judged
    assert m.cost_s >= first.timed_s + first.warmup_s + second.timed_s + second.warmup_s  # both charged


def test_unstable_timing_is_kept_when_the_protocol_does_not_retry(verdicts) -> None:
    judged = verdicts("did not converge (max_seconds reached after n=10)")
    with Profiler("cpu", replace(FAST, retry_unstable=False), timeout_s=NO_TIMEOUT_S) as prof:
        pid = prof.pid
        m = prof.measure(ff.SLEEP, {"ms": 1})
        assert prof.pid == pid  # no fresh worker
    assert len(judged) == 1 and m.ok and m.attempts == 1 and not m.stable
    assert m.unstable_reason == "did not converge (max_seconds reached after n=10)" and m.timing is judged[0]


def test_persistently_unstable_timing_is_flagged(verdicts) -> None:
    judged = verdicts("spread p10/min=4.00 above 1.25 (bimodal timings)")
    with Profiler("cpu", FAST, max_attempts=3, timeout_s=NO_TIMEOUT_S) as prof:
        m = prof.measure(ff.SLEEP, {"ms": 1})
    assert len(judged) == 3 and m.ok and m.attempts == 3 and not m.stable
    assert m.unstable_reason == "spread p10/min=4.00 above 1.25 (bimodal timings)"
    assert m.timing is min(judged, key=lambda t: t.spread)  # the most coherent attempt is kept
    assert m.cost_s >= sum(t.timed_s + t.warmup_s for t in judged)


def test_fixed_protocol_runs_exactly_n(prof: Profiler) -> None:
    with Profiler("cpu", FixedProtocol(repeats=37, warmup=3), max_attempts=1, timeout_s=NO_TIMEOUT_S) as p:
        m = p.measure(ff.SLEEP, {"ms": 1})
    assert m.ok and m.timing.n == 37 and m.timing.warmup_n == 3 and m.timing.stop == "fixed"
    assert m.protocol == "fixed-n37-v1"


def test_platform_fingerprint(prof: Profiler) -> None:
    fp = prof.fingerprint
    assert fp["kind"] == "cpu" and fp["threads"] == 1 and fp["batch_size"] == 1 and fp["dtype"] == "float32"
    assert len(prof.platform_id) == 12
    with Profiler("cpu", FAST, timeout_s=NO_TIMEOUT_S) as other:  # same machine and settings: same platform
        assert other.platform_id == prof.platform_id


def test_unpicklable_family_is_a_clear_error(prof: Profiler) -> None:
    class Local(ff.Sleep):
        name = "test-local"

    with pytest.raises(ProfilerError, match="picklable"):
        prof.measure(Local(), {"ms": 1})


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        Profiler("cpu", timeout_s=0)
    with pytest.raises(ValueError, match="max_attempts"):
        Profiler("cpu", max_attempts=0)


def test_adaptive_protocol_measures_several_buffer_placements(tmp_path: Path) -> None:
    # one attempt only: a timing that a loaded machine made unstable would otherwise be measured again (more builds)
    with Profiler("cpu", FAST, max_attempts=1, timeout_s=NO_TIMEOUT_S) as p:
        path = tmp_path / "builds"
        m = p.measure(ff.CountBuilds(str(path)), {"ms": 1})
        assert m.ok and len(path.read_text().split()) == FAST.placements == 3
        p.measure(ff.CountBuilds(str(tmp_path / "fixed")), {"ms": 0}, FixedProtocol(repeats=5))
    assert len((tmp_path / "fixed").read_text().split()) == 1  # the paper's protocol: one build


def test_protocol_per_call(prof: Profiler) -> None:
    m = prof.measure(ff.SLEEP, {"ms": 1}, FixedProtocol(repeats=7, warmup=1))
    assert m.ok and m.timing.n == 7 and m.timing.stop == "fixed" and m.protocol == "fixed-n7-v1"
    assert prof.measure(ff.SLEEP, {"ms": 1}).protocol == FAST.id  # the profiler's own again
