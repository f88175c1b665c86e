"""The store's schema: its version and the numbered migrations to it, the tables' columns, the file checks and
the one SQLite opener, and the errors and test hooks every part of the store shares (:mod:`acquisition.store`)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from acquisition._campaign_store import (
    create_campaign_tables,
    to_schema_3,
    to_schema_4,
    to_schema_6,
    to_schema_7,
    to_schema_9,
    to_schema_10,
)

__all__ = ["APPLICATION_ID", "MEASUREMENT_COLUMNS", "MIGRATIONS", "NOISE_FLOOR_COLUMNS", "PROFILE_ACTIVITIES",
           "REPEAT_COLUMNS", "SCHEMA_VERSION", "SQLITE_HEADER", "StoreError", "check_file", "fault_point",
           "open_database"]

SCHEMA_VERSION = 10  # 1: platforms, measurements, ledger; 2: + campaigns, campaign_measurements, iterations,
# predictors;
# 3: + campaign_measurements.drawn, iterations.verification / n_verify / test_*; 4: + iterations.fidelity*;
# 5: + repeats (stored measurements measured again in a fresh process: the noise ceiling);
# 6: + iterations.model / transfer_gain, campaign_sources (acquisition.transfer);
# 7: + campaigns.protocol, campaign_asks (asked configurations, pending until measured: acquisition.ask_tell)
# 8: + measurements.noise / placements, repeats.noise, noise_floors (profiler.doctor)
# 9: + campaign_asks.pred_log / pred_n (prequential predictions), iterations.stop_rule / fired / acc10_lo /
#    mape_hi / cv_spearman (acquisition.verification, acquisition.stopping)
# 10: + iterations.pending / inflight (pipelined acquisition, acquisition.loop.pipeline)
APPLICATION_ID = 0x4C414351  # "LACQ"
SQLITE_HEADER = b"SQLite format 3\x00"
PROFILE_ACTIVITIES = ("profile", "validation_profile", "network_profile", "noise_profile", "lost_profile")
# lost_profile: device time a fleet actor spent on a block whose result never came back (the actor died; the block
# was measured again elsewhere): no measurement row, but device time all the same (profiler.fleet)

MEASUREMENT_COLUMNS: dict[str, type] = {
    "id": int, "platform": str, "family": str, "key": str, "protocol": str, "config": str, "status": str,
    "reason": str, "min_ms": float, "median_ms": float, "p10_ms": float, "p90_ms": float, "mean_ms": float,
    "n": int, "timed_s": float, "warmup_s": float, "build_s": float, "cost_s": float, "attempts": int,
    "stable": int, "unstable_reason": str, "stop": str, "device_state": str, "created_at": str,
    # schema 8: the measurement's own relative noise (spread of its placements' minima) and its placements
    "noise": float, "placements": int,
}
# a repeat: the same configuration, platform and protocol measured again in a fresh worker process
REPEAT_COLUMNS: dict[str, type] = {
    "id": int, "measurement_id": int, "status": str, "reason": str, "min_ms": float, "median_ms": float,
    "p10_ms": float, "p90_ms": float, "n": int, "cost_s": float, "stable": int, "created_at": str,
    "noise": float,  # schema 8
}
# a machine's noise floor as `python -m acquisition doctor` found it (profiler.doctor); schema 8
NOISE_FLOOR_COLUMNS: dict[str, type] = {
    "id": int, "platform": str, "created_at": str, "verdict": str, "probe_family": str, "probe_n": int,
    "median_diff": float, "worst_diff": float, "within10": float, "spearman": float, "seconds": float,
    "checks": str, "reasons": str,
}


def _create_repeats(db: Any) -> None:
    db["repeats"].create(REPEAT_COLUMNS, pk="id", not_null={"measurement_id", "status", "cost_s", "created_at"},
                         foreign_keys=[("measurement_id", "measurements", "id")])
    db["repeats"].create_index(["measurement_id"])


def _create_noise_floors(db: Any) -> None:
    db["noise_floors"].create(NOISE_FLOOR_COLUMNS, pk="id", not_null={"platform", "created_at", "verdict"},
                              foreign_keys=[("platform", "platforms", "id")])
    db["noise_floors"].create_index(["platform"])


def _create_repeats_if_missing(db: Any) -> None:
    """Schema 5: stored measurements measured again in a fresh process (the noise ceiling)."""
    if "repeats" not in db.table_names():
        _create_repeats(db)


def _add_noise(db: Any) -> None:
    """Schema 8: each measurement's own noise and placements, a repeat's noise, and what ``doctor`` found."""
    for table, cols in (("measurements", ("noise", "placements")), ("repeats", ("noise",))):
        have = db[table].columns_dict
        for c in cols:
            if c not in have:
                db[table].add_column(c, MEASUREMENT_COLUMNS[c])
    if "noise_floors" not in db.table_names():
        _create_noise_floors(db)


#: The numbered migrations: ``MIGRATIONS[v]`` brings a database of schema ``v - 1`` to schema ``v``. Opening an older
#: file for writing runs the steps after its version in order, in one transaction. A new schema is one new step.
MIGRATIONS: dict[int, Callable[[Any], None]] = {
    2: create_campaign_tables, 3: to_schema_3, 4: to_schema_4, 5: _create_repeats_if_missing, 6: to_schema_6,
    7: to_schema_7, 8: _add_noise, 9: to_schema_9, 10: to_schema_10,
}


class StoreError(ValueError):
    """The database file cannot be used (not ours, newer schema, unwritable path, ...)."""


def fault_point(name: str) -> None:
    """Test hook for the crash tests: ``LATENCY_ACQUISITION_FAULT=record:3`` SIGKILLs this process at the 3rd
    pass through ``fault_point("record")`` (inside the transaction, before its commit). Inert otherwise."""
    spec = os.environ.get("LATENCY_ACQUISITION_FAULT")
    if not spec:
        return
    where, _, nth = spec.partition(":")
    if where != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] == int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_COUNTS: dict[str, int] = {}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_file(path: str, *, must_exist: bool, writable: bool) -> bool:
    """Validate ``path`` before opening it; returns whether it exists. Writes nothing."""
    if not path or path == ":memory:" or path.startswith("file:"):
        raise StoreError(f"database path {path!r} must name a file (measurements are kept on disk)")
    if os.path.isdir(path):
        raise StoreError(f"database path {path!r} is a directory")
    exists = os.path.exists(path)
    if not exists:
        if must_exist:
            raise StoreError(f"no database at {path!r}")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise StoreError(f"cannot create database {path!r}: directory {parent!r} does not exist")
        if writable and not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create database {path!r}: directory {parent!r} is not writable")
        return False
    if writable and not os.access(path, os.W_OK):
        raise StoreError(f"database {path!r} is not writable")
    if os.path.getsize(path) > 0:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_HEADER:
                raise StoreError(f"{path!r} is not a latency-acquisition database (not an SQLite file)")
    return True


def open_database(path: str, *, readonly: bool = False) -> sqlite_utils.Database:
    """The one way this project opens an SQLite file: read-only (``mode=ro``: nothing can be written, the file
    must exist) or for writing, with a 10 s busy timeout and ``synchronous = NORMAL`` (with WAL, which the caller
    enables once it knows the file is its own: a commit does not wait for an fsync of the log — 0.2 ms a record
    instead of 1-2.5 ms, what a fleet's coordinator needs at hundreds of records a second; a killed process loses
    nothing committed, a power cut at most the last commits, never the file's consistency).

    Raises :class:`sqlite3.DatabaseError` for a file that is not an SQLite database.
    """
    conn = (sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True) if readonly
            else sqlite3.connect(path))
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        db.execute("PRAGMA synchronous = NORMAL")
    return db
