"""``python -m acquisition``: --help, a tiny real profiling run and its reuse, status, CSV export, and bad input
(one-line error naming the value, exit code 2, database untouched or not created)."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import profiler.worker
from acquisition.cli import main
from acquisition.store import SCHEMA_VERSION, Store
from profiler.protocol import Timing
from profiler.worker import Measurement

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ["input_hw", "cin", "cout", "kernel", "stride", "variant"]  # resv1's configuration parameters
REQUIRED = ["family", "key", "platform", "status", "min_ms", "median_ms", "p10_ms", "p90_ms", "n", "cost_s"]
PROFILE = ["profile", "--family", "resv1", "--device", "cpu", "--no-progress", "--seed", "1"]
FAKE_PLATFORM = "feedfacecafe"


def run_cli(*argv: str, entry=None) -> tuple[int, str, str]:
    """``main(argv)`` in-process (``entry``: another CLI's main): (exit code, stdout, stderr); argparse's
    SystemExit becomes the code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = (entry or main)(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acquisition", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one stderr line, got: {err!r}"
    assert "Traceback" not in err and "error" in lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not named in {lines[0]!r}"


def counts(db: Path) -> dict[str, int]:
    with Store(db, readonly=True) as store:
        return {
            "measurements": store.db["measurements"].count,
            "profile_rows": store.db.execute("select count(*) from ledger where activity = 'profile'").fetchone()[0],
        }


def fake_measurement(key: str, family: str = "mbconv", platform: str = FAKE_PLATFORM) -> Measurement:
    t = Timing(min_ms=2.0, median_ms=2.2, p10_ms=2.1, p90_ms=2.5, mean_ms=2.3, n=30, timed_s=0.07, warmup_n=2,
               warmup_s=0.01, stop="stable", spread=1.05)
    return Measurement(family=family, key=key, config={"input_hw": 14, "cin": 16, "cout": 24, "expansion": 3,
                                                       "kernel": 3, "stride": 1, "se": False, "act": "relu"},
                       protocol="adaptive-v1", platform=platform, status="ok", cost_s=0.2, timing=t, build_s=0.01)


def make_small_db(path: Path) -> Path:
    """A valid database with two hand-made measurements (no profiling)."""
    with Store(path) as store:
        store.ensure_platform(FAKE_PLATFORM, {"kind": "cpu", "cpu_model": "fake", "threads": 1}, "cpu")
        store.record(fake_measurement("m1"))
        store.record(fake_measurement("m2"))
    return path


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


# -- help ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [[], ["profile"], ["status"], ["measurements"]], ids=["top", "profile", "status",
                                                                                      "measurements"])
def test_help(argv: list[str]) -> None:
    code, out, _ = run_cli(*argv, "--help")
    assert code == 0 and "usage:" in out
    if argv:
        assert "--db" in out
    else:
        assert "profile" in out and "status" in out and "measurements" in out


def test_help_subprocess() -> None:
    proc = run_subprocess("profile", "--help")
    assert proc.returncode == 0 and "--family" in proc.stdout and "--protocol" in proc.stdout


# -- a real, tiny profiling run -----------------------------------------------------------------------------------
@dataclass
class Profiled:
    db: Path
    runs: list[tuple[int, str, str]] = field(default_factory=list)
    counts: list[dict[str, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Profiled:
    """resv1, n=3 twice (the second run reuses everything), then n=4 (one more): counts after each run."""
    db = tmp_path_factory.mktemp("profiled") / "acq.sqlite"
    result = Profiled(db)
    for n in ("3", "3", "4"):
        result.runs.append(run_cli(*PROFILE, "--n", n, "--db", str(db)))
        result.counts.append(counts(db))
    return result


@pytest.mark.slow
def test_profile_stores_then_reuses(profiled: Profiled) -> None:
    for code, _, err in profiled.runs:
        assert code == 0, err
    first, second, third = (out for _, out, _ in profiled.runs)
    assert "profiled 3 (3 ok, 0 failed" in first and "reused 0 stored" in first
    assert "profiled 0 " in second and "reused 3 stored" in second
    assert "profiled 1 (1 ok" in third and "reused 3 stored" in third
    assert profiled.counts == [{"measurements": 3, "profile_rows": 3}, {"measurements": 3, "profile_rows": 3},
                               {"measurements": 4, "profile_rows": 4}]


def test_status_text_and_json(profiled: Profiled) -> None:
    code, out, err = run_cli("status", "--db", str(profiled.db))
    assert code == 0, err
    assert "measurements 4 (0 failed)" in out and "resv1" in out and "profiling hours" in out
    code, out, err = run_cli("status", "--db", str(profiled.db), "--json")
    assert code == 0, err
    st = json.loads(out)
    assert st["measurements"] == 4 and st["failed"] == 0 and st["schema_version"] == SCHEMA_VERSION
    assert st["profiling_hours"] > 0 and len(st["platforms"]) == 1
    (group,) = st["families"]
    assert group["family"] == "resv1" and group["ok"] == 4 and group["platform"] == st["platforms"][0]["id"]


def _check_rows(rows: list[dict[str, str]], family: str = "resv1") -> None:
    for row in rows:
        assert row["family"] == family and row["status"] == "ok" and len(row["key"]) == 20
        for col in ("min_ms", "median_ms", "p10_ms", "p90_ms", "n", "cost_s"):
            assert float(row[col]) > 0, (col, row)
        assert float(row["min_ms"]) <= float(row["p10_ms"]) <= float(row["median_ms"]) <= float(row["p90_ms"])


def test_measurements_csv(profiled: Profiled, tmp_path: Path) -> None:
    out_csv = tmp_path / "out.csv"
    code, out, err = run_cli("measurements", "--db", str(profiled.db), "--csv", str(out_csv))
    assert code == 0, err
    header, rows = read_csv(out_csv.read_text())
    assert header[:len(PARAMS)] == PARAMS
    rest = header[len(PARAMS):]
    assert [c for c in rest if c in REQUIRED] == REQUIRED  # at least these, in this order, after the parameters
    assert len(rows) == 4 and len({r["key"] for r in rows}) == 4
    _check_rows(rows)
    with Store(profiled.db, readonly=True) as store:
        stored = {m["key"]: m for m in store.measurements()}
    for row in rows:
        m = stored[row["key"]]
        assert [row[p] for p in PARAMS] == [str(m["config"][p]) for p in PARAMS]
        assert float(row["min_ms"]) == pytest.approx(m["min_ms"]) and int(row["n"]) == m["n"]
        assert row["platform"] == m["platform"]

    code, out, _ = run_cli("measurements", "--db", str(profiled.db), "--csv", "-")
    assert code == 0
    assert read_csv(out) == (header, rows)


def test_measurements_filters(profiled: Profiled, tmp_path: Path) -> None:
    db = tmp_path / "two.sqlite"
    shutil.copyfile(profiled.db, db)
    with Store(db) as store:  # a second family on a second platform
        store.ensure_platform(FAKE_PLATFORM, {"kind": "cpu", "cpu_model": "fake"}, "cpu")
        store.record(fake_measurement("m1"))
        real_platform = next(p["id"] for p in store.platforms() if p["id"] != FAKE_PLATFORM)

    def export(*flags: str) -> list[dict[str, str]]:
        code, out, err = run_cli("measurements", "--db", str(db), *flags, "--csv", "-")
        assert code == 0, err
        return read_csv(out)[1]

    assert len(export()) == 5
    assert {r["family"] for r in export("--family", "resv1")} == {"resv1"} and len(export("--family", "resv1")) == 4
    (row,) = export("--family", "mbconv")
    assert row["platform"] == FAKE_PLATFORM and row["expansion"] == "3"
    assert [r["key"] for r in export("--platform", FAKE_PLATFORM)] == ["m1"]
    assert len(export("--platform", real_platform)) == 4
    assert export("--platform", FAKE_PLATFORM, "--family", "resv1") == []


@pytest.mark.slow
def test_fixed_protocol_subprocess(tmp_path: Path) -> None:
    db = tmp_path / "fixed.sqlite"
    proc = run_subprocess("profile", "--family", "mbconv", "--n", "1", "--protocol", "fixed", "--repeats", "50",
                          "--device", "cpu", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "fixed-n50-v1" in proc.stdout
    with Store(db, readonly=True) as store:
        (m,) = store.measurements()
        assert m["protocol"] == "fixed-n50-v1" and m["n"] == 50 and m["status"] == "ok" and m["family"] == "mbconv"
        assert m["stop"] == "fixed" and m["min_ms"] > 0
        (ledger,) = store.db["ledger"].rows
        assert ledger["measurement_id"] == m["id"] and ledger["seconds"] == pytest.approx(m["cost_s"])


# -- bad input ----------------------------------------------------------------------------------------------------
class _NoProfiling:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("bad input must be refused before any profiling starts")


@pytest.fixture
def no_profiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiler.worker, "Profiler", _NoProfiling)


def _text(path: Path) -> Path:
    path.write_text("this is not a database\n")
    return path


def _other_program(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("create table songs (title text)")
    conn.commit()
    conn.close()
    return path


def _newer(path: Path) -> Path:
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    return path


def _missing(path: Path) -> Path:
    return path


# (subcommand args before --db, db maker, extra args after, what the error must name: "{db}" is the db path)
BAD_INPUT: dict[str, tuple[list[str], Callable[[Path], Path], list[str], str]] = {
    "unknown-family": (["profile", "--family", "nope", "--device", "cpu", "--n", "1"], _missing, [], "nope"),
    "device-tpu": (["profile", "--family", "resv1", "--device", "tpu", "--n", "1"], _missing, [], "tpu"),
    "device-cuda": (["profile", "--family", "resv1", "--device", "cuda", "--n", "1"], make_small_db, [], "cuda"),
    "n-zero": (["profile", "--family", "resv1", "--n", "0"], _missing, [], "'0'"),
    "n-negative": (["profile", "--family", "resv1", "--n", "-3"], _missing, [], "-3"),
    "n-not-int": (["profile", "--family", "resv1", "--n", "abc"], make_small_db, [], "abc"),
    "text-file": (["profile", "--family", "resv1", "--device", "cpu", "--n", "1"], _text, [], "{db}"),
    "other-program": (["profile", "--family", "resv1", "--device", "cpu", "--n", "1"], _other_program, [], "{db}"),
    "newer-schema": (["profile", "--family", "resv1", "--device", "cpu", "--n", "1"], _newer, [], "{db}"),
    "repeats-adaptive": (["profile", "--family", "resv1", "--device", "cpu", "--n", "1", "--repeats", "5"],
                         make_small_db, [], "--repeats"),
    "status-missing": (["status"], _missing, [], "{db}"),
    "status-text": (["status", "--json"], _text, [], "{db}"),
    "status-newer": (["status"], _newer, [], "{db}"),
    "measurements-family": (["measurements", "--family", "nope"], make_small_db, ["--csv", "-"], "nope"),
    "measurements-platform": (["measurements", "--platform", "0123456789ab"], make_small_db, ["--csv", "-"],
                              "0123456789ab"),
    "measurements-other-program": (["measurements"], _other_program, ["--csv", "-"], "{db}"),
    "run-transfer-mixed": (["run", "--device", "cpu", "--transfer", "auto", "none"], _missing, [], "--transfer"),
    "run-transfer-unknown": (["run", "--device", "cpu", "--transfer", "0123456789ab"], make_small_db, [],
                             "0123456789ab"),
    "run-transfer-no-db": (["run", "--device", "cpu", "--transfer", "0123456789ab"], _missing, [], "{db}"),
    "run-prior-bundle-missing": (["run", "--device", "cpu", "--prior-bundle", "/nonexistent/p.bundle"], _missing, [],
                                 "/nonexistent/p.bundle"),
    "run-prior-bundle-no-transfer": (["run", "--device", "cpu", "--transfer", "none", "--prior-bundle", "p.bundle"],
                                     _missing, [], "--prior-bundle"),
}


@pytest.mark.usefixtures("no_profiling")
@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input(case: str, tmp_path: Path) -> None:
    if case == "device-cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is present")
    head, make, tail, needle = BAD_INPUT[case]
    db = make(tmp_path / "acq.sqlite")
    before = db.read_bytes() if db.exists() else None
    code, out, err = run_cli(*head, "--db", str(db), *tail)
    assert code == 2, (out, err)
    assert_one_line_error(err, needle.format(db=db))
    assert out == ""
    if before is None:
        assert not db.exists()
    else:
        assert db.read_bytes() == before


@pytest.mark.usefixtures("no_profiling")
def test_db_in_missing_directory(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "acq.sqlite"
    code, _, err = run_cli(*PROFILE, "--n", "1", "--db", str(db))
    assert code == 2
    assert_one_line_error(err, str(db))
    assert not db.parent.exists()


def test_csv_into_missing_directory(tmp_path: Path) -> None:
    db = make_small_db(tmp_path / "acq.sqlite")
    before = db.read_bytes()
    target = tmp_path / "missing" / "out.csv"
    code, out, err = run_cli("measurements", "--db", str(db), "--csv", str(target))
    assert code == 2 and out == ""
    assert_one_line_error(err, str(target))
    assert db.read_bytes() == before and not target.parent.exists()


@pytest.mark.parametrize("argv", [["profile", "--family", "nope", "--device", "cpu", "--n", "1"],
                                  ["status"]], ids=["unknown-family", "status-newer-schema"])
def test_bad_input_subprocess(argv: list[str], tmp_path: Path) -> None:
    """The real entry point: exit code 2, one stderr line, no traceback, database unchanged or not created."""
    db = tmp_path / "acq.sqlite"
    if argv[0] == "status":
        _newer(db)
    before = db.read_bytes() if db.exists() else None
    proc = run_subprocess(*argv, "--db", str(db))
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "nope" if argv[0] == "profile" else str(db))
    assert proc.stdout == ""
    assert (db.read_bytes() if db.exists() else None) == before


# -- bugs found by these tests, fixed in the source ----------------------------------------------------------------
def test_negative_seed_is_a_one_line_error(tmp_path: Path, no_profiling: None) -> None:
    db = tmp_path / "acq.sqlite"
    code, _, err = run_cli(*PROFILE[:-1], "-1", "--n", "1", "--db", str(db))
    assert code == 2
    assert_one_line_error(err, "-1")
    assert not db.exists()


@pytest.mark.parametrize("db", [":memory:", ""], ids=["memory", "empty"])
def test_db_that_is_not_a_file_is_refused(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          no_profiling: None) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*PROFILE, "--n", "1", "--db", db)
    assert code == 2
    assert_one_line_error(err, repr(db))
    assert list(tmp_path.iterdir()) == []


def test_csv_onto_the_database_is_refused(tmp_path: Path) -> None:
    db = make_small_db(tmp_path / "acq.sqlite")
    before = db.read_bytes()
    code, _, err = run_cli("measurements", "--db", str(db), "--csv", str(db))
    try:
        assert code == 2
        assert_one_line_error(err, str(db))
    finally:
        assert db.read_bytes() == before


@pytest.mark.parametrize("exc", [sqlite3.OperationalError("database or disk is full"),
                                 OSError(errno.ENOSPC, "No space left on device")])
def test_a_full_disk_is_a_one_line_error_that_says_how_to_resume(exc: BaseException,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from acquisition.cli import run_command

    parser = argparse.ArgumentParser(prog="python -m acquisition")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command")

    def fails(args: argparse.Namespace) -> int:
        raise exc

    sub.add_parser("run").set_defaults(func=fails)
    assert run_command(parser, ["run"], interrupted="") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be written" in err[0] and "run the same command again" in err[0]
