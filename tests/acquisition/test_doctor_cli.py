"""``python -m acquisition doctor``: the printed checks and verdict, ``--json``, the stored noise floor, exit codes
(0 only for ok, 1 for any other verdict, 2 for bad arguments), the run lock, and one real run on a tiny probe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import profiler.doctor as doctor
from acquisition._lock import RunLock
from acquisition.store import Store
from profiler.doctor import Check
from tests.acquisition.test_cli import assert_one_line_error, run_cli
from tests.profiler.test_doctor import BUSY, IDLE, PLATFORM, fake


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch):
    """Replace the worker by a stand-in, the load readings by scripted ones and the sysfs readings by those of a
    well-set machine, so that the verdict depends on the test alone, not on this machine."""

    def setup(snapshots: tuple[Any, ...] = IDLE, **kw: Any) -> None:
        factory, it = fake(**kw), iter(snapshots)
        monkeypatch.setattr("profiler.worker.Profiler", lambda device, protocol: factory(device, protocol))
        monkeypatch.setattr(doctor, "take_snapshot", lambda root="/", pids=(): next(it))
        monkeypatch.setattr(doctor, "read_cpufreq", lambda root="/": {})
        monkeypatch.setattr(doctor, "check_transparent_hugepages",
                            lambda root="/": Check("huge pages", "ok", "transparent huge pages madvise"))
        monkeypatch.setattr(doctor, "check_threads", lambda device: Check("threads", "ok", "1 thread on 2 cores"))
        monkeypatch.setattr(doctor, "memory_windows", lambda: [2.0] * 10)

    return setup


def test_an_ok_machine_prints_its_checks_stores_the_floor_and_exits_0(tmp_path: Path, stand_ins) -> None:
    stand_ins()
    db = tmp_path / "a.sqlite"
    code, out, err = run_cli("doctor", "--device", "cpu", "--db", str(db), "--probe-n", "6", "--no-progress")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"doctor on cpu (platform {PLATFORM}): ")
    assert lines[1].split() == ["check", "status", "reading"]
    assert any(line.split()[:2] == ["load", "ok"] for line in lines)
    assert any(line.startswith("probe: 6 mbconv blocks measured in two fresh worker processes") for line in lines)
    assert "verdict: ok" in lines and f"stored as noise floor 1 of platform {PLATFORM}" in lines
    with Store(db, readonly=True) as store:
        (row,) = store.noise_floors(PLATFORM)
        assert row["verdict"] == "ok" and row["probe_n"] == 6
        assert store.db.execute("select activity, note from ledger").fetchall() == [("noise_profile", "doctor")]


def test_json_and_exit_1_for_any_other_verdict(tmp_path: Path, stand_ins) -> None:
    db = str(tmp_path / "a.sqlite")
    stand_ins(BUSY)
    code, out, _ = run_cli("doctor", "--device", "cpu", "--db", db, "--probe-n", "4", "--json", "--no-progress")
    rep = json.loads(out)
    assert code == 1 and rep["verdict"] == "busy" and rep["platform"] == PLATFORM and rep["noise_floor_id"] == 1
    assert rep["reasons"] == ["load: another process used 0.97 of a core during the probe (fail at 0.25)"]
    assert {c["name"] for c in rep["checks"]} >= {"load", "steal time", "threads"}
    assert rep["thresholds"]["median_diff"] == doctor.MAX_MEDIAN_DIFF and len(rep["pairs"]) == 4
    stand_ins(off=2)
    code, out, _ = run_cli("doctor", "--device", "cpu", "--db", db, "--probe-n", "8", "--no-progress")
    assert code == 1 and "verdict: noisy" in out and "above 10 %" in out
    stand_ins(fail_at=2)
    code, out, _ = run_cli("doctor", "--device", "cpu", "--db", db, "--probe-n", "4", "--no-progress")
    assert code == 1 and "verdict: unusable" in out and "RuntimeError: boom" in out
    with Store(db, readonly=True) as store:
        assert [r["verdict"] for r in store.noise_floors()] == ["busy", "noisy", "unusable"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["--probe-n", "1"], "'1' must be an integer >= 2"),
    (["--seed", "-1"], "'-1' must be a non-negative integer"),
    (["--device", "tpu"], "device='tpu' is not allowed"),
    (["--device", "cuda:0", "--threads", "2"], "threads=2 only applies to the cpu device"),
    (["--threads", "4096"], "threads=4096 is out of range"),
    (["--dtype", "int8"], "invalid choice: 'int8'"),
])
def test_bad_arguments_are_one_line_exit_2_and_touch_nothing(tmp_path: Path, argv: list[str], needle: str) -> None:
    db = tmp_path / "a.sqlite"
    code, out, err = run_cli("doctor", "--db", str(db), *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, needle)
    assert not db.exists()


def test_an_unusable_database_path_is_refused(tmp_path: Path) -> None:
    code, _, err = run_cli("doctor", "--device", "cpu", "--db", str(tmp_path / "missing" / "a.sqlite"))
    assert code == 2
    assert_one_line_error(err, "does not exist")


def test_a_database_being_run_is_refused(tmp_path: Path, stand_ins) -> None:
    stand_ins()
    db = tmp_path / "a.sqlite"
    Store(db).close()
    with RunLock(str(db)):
        code, _, err = run_cli("doctor", "--device", "cpu", "--db", str(db), "--no-progress")
    assert code == 2
    assert_one_line_error(err, "is being run by another process")


@pytest.mark.slow
def test_a_real_doctor_run_on_a_tiny_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real workers and real /proc readings, a short protocol: the verdict depends on this machine's state, so
    only the shape of the result is asserted."""
    from profiler.protocol import AdaptiveProtocol
    from profiler.worker import Profiler

    class QuickProfiler(Profiler):
        def __init__(self, device: Any, protocol: Any = None, **kw: Any) -> None:
            super().__init__(device, AdaptiveProtocol(min_seconds=0.02, max_seconds=0.3, retry_unstable=False), **kw)

    monkeypatch.setattr("profiler.worker.Profiler", QuickProfiler)
    db = tmp_path / "a.sqlite"
    code, out, err = run_cli("doctor", "--device", "cpu", "--db", str(db), "--probe-n", "2", "--json",
                             "--no-progress")
    rep = json.loads(out)
    assert code == (0 if rep["verdict"] == "ok" else 1), err
    assert rep["verdict"] in ("ok", "busy", "noisy") and len(rep["pairs"]) == 2
    assert {c["name"] for c in rep["checks"]} >= {"load", "steal time", "cpu frequency", "threads", "huge pages",
                                                  "placement noise", "memory contention"}
    assert rep["placement_noise"] is not None  # three placements per measurement
    with Store(db, readonly=True) as store:
        assert store.latest_noise_floor(rep["platform"])["verdict"] == rep["verdict"]
