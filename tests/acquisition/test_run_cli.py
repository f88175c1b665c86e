"""``run``, ``report`` and ``status`` from the command line: a tiny real campaign on this CPU, SIGKILL at several
moments then a rerun that finishes with nothing lost or duplicated, the one-runner lock, and bad arguments."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acquisition._lock import RunLock
from acquisition.store import Store
from tests.acquisition.test_cli import assert_one_line_error, run_cli
from tests.tables import has_cell, has_row

ROOT = Path(__file__).resolve().parents[2]
# 20 real blocks a run (10 validation, the least allowed; 5 initial; one batch of 5): each costs ~0.7 s on this CPU,
# and these runs are most of the suite's time
TINY = ["--family", "mbconv", "--device", "cpu", "--campaign", "tiny", "--validation-size", "10", "--initial-size",
        "5", "--batch-size", "5", "--budget-samples", "10", "--target-spearman", "0.9999", "--model", "gbt-quick",
        "--strategy", "uncertainty", "--pool-size", "200", "--verification", "holdout", "--fidelity", "full",
        "--no-progress", "--plugin", "tests.quick_models"]

pytestmark = pytest.mark.slow  # real profiling in subprocesses
# the kill tests need no validation set: cross-validation, 10 blocks a run instead of 20
KILL = ("--verification", "cv")


def run_sub(db: Path, *extra: str, fault: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LATENCY_ACQUISITION_FAULT", None)
    if fault:
        env["LATENCY_ACQUISITION_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "acquisition", "run", "--db", str(db), *TINY, *extra], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)


def rerun(db: Path, *extra: str) -> None:
    """The same command again, in this process: it resumes what the run before left. Only a run that is killed
    needs a process of its own; a rerun here skips a fresh interpreter's imports (2-3 s each)."""
    code, _, err = run_cli("run", "--db", str(db), *TINY, *extra)
    assert code == 0, err


def check_consistent(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        n_meas = con.execute("select count(*) from measurements").fetchone()[0]
        keys = con.execute("select count(distinct platform || family || key || protocol) from measurements"
                           ).fetchone()[0]
        assert keys == n_meas, "a measurement is duplicated"
        charged = con.execute("select count(*), count(distinct measurement_id), coalesce(sum(seconds), 0) from ledger "
                              "where activity in ('profile', 'validation_profile')").fetchone()
        cost = con.execute("select coalesce(sum(cost_s), 0) from measurements").fetchone()[0]
        assert charged[0] == charged[1] == n_meas, "every measurement is charged exactly once"
        assert charged[2] == pytest.approx(cost), "ledger profile seconds = sum over measurements profiled"
        orphans = con.execute("select count(*) from campaign_measurements cm left join measurements m on m.id = "
                              "cm.measurement_id where m.id is null").fetchone()[0]
        assert orphans == 0
        return {"measurements": n_meas,
                "state": (con.execute("select state from campaigns where name = 'tiny'").fetchone() or [None])[0]}
    finally:
        con.close()


def test_tiny_campaign_runs_reports_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "acq.sqlite"
    proc = run_sub(db)
    assert proc.returncode == 0, proc.stderr
    assert "campaign tiny: budget spent" in proc.stdout and "predictor bundle" in proc.stdout
    assert "engine overhead" in proc.stdout
    assert "noise floor: no doctor run on this platform (`python -m acquisition doctor` measures it)" in proc.stdout
    st = check_consistent(db)
    assert st["state"] == "budget" and st["measurements"] == 20
    code, out, err = run_cli("status", "--db", str(db))
    assert code == 0 and "tiny" in out and "budget" in out
    for fmt in ("md", "json", "html"):
        code, out, err = run_cli("report", "--db", str(db), "--format", fmt, "--out", str(tmp_path / fmt))
        assert code == 0, err
        files = {Path(line).name for line in out.split()}
        assert f"report.{fmt}" in files and "tiny_learning_curve.png" in files
        assert "tiny_predicted_vs_measured.png" in files
    text = (tmp_path / "md" / "report.md").read_text()
    assert has_row(text, "tiny", "mbconv") and "validation_profile" in text
    assert "noise ceiling: not measured" in proc.stdout and "Noise ceiling: not measured" in text
    assert has_cell(text, "not measured")
    # five stored blocks measured again in a fresh worker: stored apart, charged, and shown in the report
    code, out, err = run_cli("remeasure", "--db", str(db), "--family", "mbconv", "--n", "5", "--device", "cpu",
                             "--no-progress")
    assert code == 0, err
    assert "the measurement itself repeats within +-10 % for" in out and "of 5 re-measured blocks" in out
    code, out, err = run_cli("report", "--db", str(db), "--out", str(tmp_path / "md2"))
    text = (tmp_path / "md2" / "report.md").read_text()
    assert "## Noise ceiling" in text and has_row(text, "noise_profile", "5")
    assert check_consistent(db)["measurements"] == 20  # the measurements themselves are untouched
    # a second run of the finished campaign with a larger budget resumes it and profiles only the new samples
    rerun(db, "--budget-samples", "15")
    assert check_consistent(db)["measurements"] == 25


# a kill while measuring, between two recorded measurements (in the batch after the first fit), and at the last fit
@pytest.mark.parametrize("fault", ["profile:3", "record:8", "fit:2"])
def test_sigkill_then_rerun_loses_and_duplicates_nothing(fault: str, tmp_path: Path) -> None:
    db = tmp_path / "acq.sqlite"
    proc = run_sub(db, *KILL, fault=fault)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-500:])
    before = check_consistent(db)
    rerun(db, *KILL)
    after = check_consistent(db)
    assert after["state"] == "budget" and after["measurements"] == 10 >= before["measurements"]


def test_sigkill_with_auto_fidelity_then_rerun(tmp_path: Path) -> None:
    """Cheap batches and their full-fidelity probes: a kill between them loses and duplicates nothing."""
    db = tmp_path / "acq.sqlite"
    auto = ["--fidelity", "auto", "--verification", "cv", "--strategy", "representative", "--budget-samples", "15"]
    proc = run_sub(db, *auto, fault="record:12")
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-500:])
    check_consistent(db)
    rerun(db, *auto)
    assert check_consistent(db)["state"] == "budget"
    con = sqlite3.connect(db)
    try:
        protocols = dict(con.execute("select protocol, count(distinct key) from measurements group by protocol"))
        n_configs = con.execute("select count(distinct key) from measurements").fetchone()[0]
    finally:
        con.close()
    assert protocols["adaptive-quick-v1"] == n_configs == 15  # every configuration cheap, a few probed at full
    assert 4 <= protocols["adaptive-v1"] < 15


def test_sigkill_at_a_random_moment(tmp_path: Path) -> None:
    db = tmp_path / "acq.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "acquisition", "run", "--db", str(db), *TINY, *KILL], cwd=ROOT,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill mid-run: once some measurements are stored (a fixed delay raced the schema's creation on a busy box)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.5)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            n = con.execute("select count(*) from measurements").fetchone()[0]
            con.close()
        except sqlite3.Error:
            continue
        if n >= 5:
            break
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    check_consistent(db)
    rerun(db, *KILL)
    assert check_consistent(db)["state"] == "budget"


def test_a_second_run_on_a_busy_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "acq.sqlite"
    with RunLock(str(db)):
        code, _, err = run_cli("run", "--db", str(db), *TINY)
    assert code == 2
    assert_one_line_error(err, "being run by another process", f"pid {os.getpid()}")
    assert not db.exists()


@pytest.mark.parametrize(("argv", "needle"), [
    (["--target-spearman", "0"], "target_spearman=0.0"), (["--target-spearman", "1.5"], "target_spearman=1.5"),
    (["--budget-hours", "-1"], "budget_hours=-1.0"), (["--budget-samples", "-5"], "budget_samples=-5"),
    (["--strategy", "magic"], "unknown strategy 'magic'"), (["--model", "xgb"], "model 'xgb'"),
    (["--family", "nope"], "unknown family 'nope'"), (["--campaign", "bad name"], "campaign name 'bad name'"),
    (["--seed", "-1"], "seed=-1"), (["--device", "cuda:0"], "cuda"),
    (["--fidelity", "cheap"], "--fidelity"),
])
def test_bad_arguments_write_nothing(argv: list[str], needle: str, tmp_path: Path) -> None:
    db = tmp_path / "acq.sqlite"
    code, out, err = run_cli("run", "--db", str(db), "--no-progress", *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, needle)
    assert not db.exists()


def test_report_bad_input(tmp_path: Path) -> None:
    code, _, err = run_cli("report", "--db", str(tmp_path / "none.sqlite"))
    assert code == 2
    assert_one_line_error(err, "does not exist")
    db = tmp_path / "acq.sqlite"
    Store(db).close()
    code, _, err = run_cli("report", "--db", str(db), "--campaign", "ghost", "--out", str(tmp_path / "r"))
    assert code == 2
    assert_one_line_error(err, "'ghost'")
