"""The SQLite store: platforms, measurements and the cost ledger, in one file (sqlite-utils, WAL).

The coordinator is the only writer. Every state change (a measurement and its ledger row) is one transaction.
The file is marked as ours (``PRAGMA application_id``) and versioned (``PRAGMA user_version``): opening a file
that is not an SQLite database, another program's database, or a database written by a newer version fails
with :class:`StoreError` before anything is written.

Each measurement keeps its own noise estimate (``noise``: the spread of its buffer placements' minima, schema 8),
and ``noise_floors`` keeps what ``python -m acquisition doctor`` found on a platform (:mod:`acquisition.doctor`).

Measurements are unique per platform x family x config key x protocol: a configuration that is asked for again
is reused, not profiled again. Each measurement's cost (seconds of device time) is one ``profile`` row in the
ledger; profiling hours = sum of profile-like ledger seconds / 3600.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.sqlite")
    >>> with Store(path) as store:
    ...     store.status()["measurements"]
    0
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from acquisition._campaign_store import (
    CampaignTables,
    create_campaign_tables,
    to_schema_3,
    to_schema_4,
    to_schema_6,
    to_schema_7,
    to_schema_9,
)
from acquisition._ledger_store import LedgerQueries

__all__ = ["APPLICATION_ID", "PROFILE_ACTIVITIES", "SCHEMA_VERSION", "Store", "StoreError", "fault_point"]

SCHEMA_VERSION = 9  # 1: platforms, measurements, ledger; 2: + campaigns, campaign_measurements, iterations, predictors;
# 3: + campaign_measurements.drawn, iterations.verification / n_verify / test_*; 4: + iterations.fidelity*;
# 5: + repeats (stored measurements measured again in a fresh process: the noise ceiling);
# 6: + iterations.model / transfer_gain, campaign_sources (acquisition.transfer);
# 7: + campaigns.protocol, campaign_asks (asked configurations, pending until measured: acquisition.ask_tell)
# 8: + measurements.noise / placements, repeats.noise, noise_floors (acquisition.doctor)
# 9: + campaign_asks.pred_log / pred_n (prequential predictions), iterations.stop_rule / fired / acc10_lo /
#    mape_hi / cv_spearman (acquisition.verification, acquisition.stopping)
APPLICATION_ID = 0x4C414351  # "LACQ"
SQLITE_HEADER = b"SQLite format 3\x00"
PROFILE_ACTIVITIES = ("profile", "validation_profile", "network_profile", "noise_profile", "lost_profile")
# lost_profile: device time a fleet actor spent on a block whose result never came back (the actor died; the block
# was measured again elsewhere): no measurement row, but device time all the same (acquisition.fleet)

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
# a machine's noise floor as `python -m acquisition doctor` found it (acquisition.doctor); schema 8
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
    7: to_schema_7, 8: _add_noise, 9: to_schema_9,
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _check_file(path: str, *, must_exist: bool, writable: bool) -> bool:
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


class Store(CampaignTables, LedgerQueries):
    """One latency-acquisition database file. Use as a context manager; see the module docstring.

    ``readonly=True`` opens an existing file without any write (the file must exist); otherwise the file is
    created if missing, after checking that its directory is writable.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        _check_file(self.path, must_exist=readonly, writable=not readonly)
        try:
            self.db = open_database(self.path, readonly=readonly)
            app_id = self.db.execute("PRAGMA application_id").fetchone()[0]
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = self.db.table_names()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path!r} is not a latency-acquisition database ({exc})") from None
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            self.db.close()
            raise StoreError(f"{self.path!r} is an SQLite database of another program, not a latency-acquisition "
                             "database")
        if version > SCHEMA_VERSION:
            self.db.close()
            raise StoreError(f"database {self.path!r} has schema version {version}, newer than this program's "
                             f"{SCHEMA_VERSION}: upgrade latency-acquisition to use it")
        if app_id == 0:
            if readonly:
                self.db.close()
                raise StoreError(f"{self.path!r} is an empty file, not a latency-acquisition database")
            self._create_schema()
        elif not readonly:
            self.db.enable_wal()
            if version < SCHEMA_VERSION:
                self._migrate(version)

    # -- schema ----------------------------------------------------------------------------------------------
    def _create_schema(self) -> None:
        db = self.db
        db.enable_wal()
        with db.atomic():
            db["platforms"].create({"id": str, "kind": str, "device": str, "fingerprint": str, "created_at": str},
                                   pk="id")
            db["measurements"].create(MEASUREMENT_COLUMNS, pk="id",
                                      not_null={"platform", "family", "key", "protocol", "config", "status",
                                                "cost_s", "created_at"},
                                      foreign_keys=[("platform", "platforms", "id")])
            db["measurements"].create_index(["platform", "family", "key", "protocol"], unique=True)
            db["measurements"].create_index(["family", "status"])
            db["ledger"].create({"id": int, "created_at": str, "activity": str, "seconds": float, "platform": str,
                                 "family": str, "campaign": str, "measurement_id": int, "note": str}, pk="id",
                                not_null={"created_at", "activity", "seconds"})
            db["ledger"].create_index(["activity"])
            db["ledger"].create_index(["campaign"])
            create_campaign_tables(db)
            _create_repeats(db)
            _create_noise_floors(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate(self, version: int) -> None:
        """Bring an older database up to :data:`SCHEMA_VERSION` in one transaction (nothing is rewritten)."""
        with self.db.atomic():
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def transaction(self) -> Any:
        """A context manager: everything written inside it is one transaction (nested ones are savepoints)."""
        self._writable()
        return self.db.atomic()

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"database {self.path!r} was opened read-only")

    # -- platforms -------------------------------------------------------------------------------------------
    def ensure_platform(self, platform_id: str, fingerprint: dict[str, Any], device: str) -> None:
        self._writable()
        with self.db.atomic():
            if not self.db["platforms"].count_where("id = ?", [platform_id]):
                self.db["platforms"].insert({"id": platform_id, "kind": fingerprint.get("kind"), "device": device,
                                             "fingerprint": json.dumps(fingerprint, sort_keys=True),
                                             "created_at": _now()})

    def platforms(self) -> list[dict[str, Any]]:
        rows = list(self.db["platforms"].rows_where(order_by="created_at"))
        for r in rows:
            r["fingerprint"] = json.loads(r["fingerprint"])
        return rows

    # -- measurements ----------------------------------------------------------------------------------------
    def find(self, platform: str, family: str, protocol: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored measurements for these keys, by key (missing keys are absent)."""
        out: dict[str, dict[str, Any]] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db["measurements"].rows_where(
                    f"platform = ? and family = ? and protocol = ? and key in ({marks})",
                    [platform, family, protocol, *chunk]):
                out[row["key"]] = row
        return out

    def record(self, m: Any, *, activity: str = "profile", campaign: str | None = None,
               role: str | None = None, drawn: str | None = None) -> int:
        """Store a :class:`profiler.worker.Measurement` and charge its cost to the ledger, atomically.

        A configuration already stored as failed is replaced (a retry); one stored as ok is never replaced
        (raises :class:`StoreError`): measurements are immutable ground truth.
        """
        self._writable()
        t = m.timing
        row = {
            "platform": m.platform, "family": m.family, "key": m.key, "protocol": m.protocol,
            "config": json.dumps(m.config), "status": m.status, "reason": m.reason,
            "min_ms": t.min_ms if t else None, "median_ms": t.median_ms if t else None,
            "p10_ms": t.p10_ms if t else None, "p90_ms": t.p90_ms if t else None,
            "mean_ms": t.mean_ms if t else None, "n": t.n if t else None, "timed_s": t.timed_s if t else None,
            "warmup_s": t.warmup_s if t else None, "stop": t.stop if t else None, "build_s": m.build_s,
            "cost_s": m.cost_s, "attempts": m.attempts, "stable": int(bool(m.stable)),
            "unstable_reason": m.unstable_reason, "device_state": json.dumps(m.device_state or {}),
            "noise": getattr(t, "noise", None) if t else None,
            "placements": getattr(t, "placements", None) if t else None, "created_at": _now(),
        }
        with self.db.atomic():
            old = self.find(m.platform, m.family, m.protocol, [m.key]).get(m.key)
            if old is not None and old["status"] == "ok":
                raise StoreError(f"measurement {m.family}/{m.key} on platform {m.platform} is already stored")
            if old is not None:
                row["id"] = old["id"]
                self.db["measurements"].upsert(row, pk="id")
                mid = old["id"]
            else:
                mid = self.db["measurements"].insert(row).last_pk
            self.db["ledger"].insert({"created_at": row["created_at"], "activity": activity, "seconds": m.cost_s,
                                      "platform": m.platform, "family": m.family, "campaign": campaign,
                                      "measurement_id": mid, "note": None if m.status == "ok" else m.reason})
            if campaign is not None and role is not None:
                self.db["campaign_measurements"].insert({"campaign": campaign, "measurement_id": int(mid),
                                                         "role": role, "created_at": _now(), "drawn": drawn},
                                                        ignore=True)
            fault_point("record")
        return int(mid)

    def record_repeat(self, m: Any, measurement_id: int, *, activity: str = "noise_profile") -> int:
        """Store ``m``, a fresh-process re-measurement of stored measurement ``measurement_id``, and charge its
        cost to the ledger, atomically. The stored measurement itself is never changed."""
        self._writable()
        t = m.timing
        row = {"measurement_id": int(measurement_id), "status": m.status, "reason": m.reason,
               "min_ms": t.min_ms if t else None, "median_ms": t.median_ms if t else None,
               "p10_ms": t.p10_ms if t else None, "p90_ms": t.p90_ms if t else None, "n": t.n if t else None,
               "cost_s": m.cost_s, "stable": int(bool(m.stable)), "noise": getattr(t, "noise", None) if t else None,
               "created_at": _now()}
        with self.db.atomic():
            rid = self.db["repeats"].insert(row).last_pk
            self.db["ledger"].insert({"created_at": row["created_at"], "activity": activity, "seconds": m.cost_s,
                                      "platform": m.platform, "family": m.family, "campaign": None,
                                      "measurement_id": int(measurement_id),
                                      "note": "re-measured in a fresh process"})
            fault_point("record_repeat")
        return int(rid)

    def repeats(self, family: str | None = None, platform: str | None = None,
                protocol: str | None = None) -> list[dict[str, Any]]:
        """Ok repeats of ok measurements, each with its measurement's ``key``, ``platform``, ``protocol``,
        ``family`` and statistics (``first_min_ms`` ...), oldest first."""
        where, args = ["r.status = 'ok'", "m.status = 'ok'"], []
        for col, val in (("family", family), ("platform", platform), ("protocol", protocol)):
            if val is not None:
                where.append(f"m.{col} = ?")
                args.append(val)
        cur = self.db.execute(
            "select r.id, r.measurement_id, m.platform, m.family, m.key, m.protocol, m.min_ms, m.median_ms, "
            "m.p10_ms, r.min_ms, r.median_ms, r.p10_ms, r.cost_s, r.created_at from repeats r join measurements m "
            f"on m.id = r.measurement_id where {' and '.join(where)} order by r.id", args)
        cols = ("id", "measurement_id", "platform", "family", "key", "protocol", "first_min_ms", "first_median_ms",
                "first_p10_ms", "min_ms", "median_ms", "p10_ms", "cost_s", "created_at")
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def measurements(self, family: str | None = None, platform: str | None = None,
                     status: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored measurements (``config`` and ``device_state`` decoded), oldest first."""
        where, args = [], []
        for col, val in (("family", family), ("platform", platform), ("status", status)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        for row in self.db["measurements"].rows_where(" and ".join(where) or None, args, order_by="id"):
            row["config"] = json.loads(row["config"])
            row["device_state"] = json.loads(row["device_state"] or "{}")
            yield row

    # -- noise floors (acquisition.doctor) --------------------------------------------------------------------
    def record_noise_floor(self, platform: str, result: dict[str, Any]) -> int:
        """Store what ``python -m acquisition doctor`` found on ``platform`` (a
        :meth:`acquisition.doctor.DoctorReport.as_row`) and charge its wall time to the ledger as
        ``noise_profile`` (note ``doctor``), atomically. ``checks`` and ``reasons`` are stored as JSON."""
        self._writable()
        if not self.db["platforms"].count_where("id = ?", [platform]):
            raise StoreError(f"platform {platform!r} is not in database {self.path!r}: ensure_platform() first")
        seconds = float(result.get("seconds") or 0.0)
        if not seconds >= 0:
            raise StoreError(f"seconds={result.get('seconds')!r} must be a non-negative number")
        row = {c: result.get(c) for c in NOISE_FLOOR_COLUMNS if c not in ("id", "platform", "created_at", "checks",
                                                                          "reasons")}
        row.update(platform=platform, created_at=_now(), seconds=seconds,
                   checks=json.dumps(result.get("checks") or []), reasons=json.dumps(list(result.get("reasons") or [])))
        if not row.get("verdict"):
            raise StoreError(f"a noise floor needs a verdict, got {result.get('verdict')!r}")
        with self.db.atomic():
            fid = self.db["noise_floors"].insert(row).last_pk
            self.db["ledger"].insert({"created_at": row["created_at"], "activity": "noise_profile", "seconds": seconds,
                                      "platform": platform, "family": row.get("probe_family"), "campaign": None,
                                      "measurement_id": None, "note": "doctor"})
            fault_point("record_noise_floor")
        return int(fid)

    def noise_floors(self, platform: str | None = None) -> list[dict[str, Any]]:
        """Stored noise floors (``checks`` and ``reasons`` decoded), oldest first; ``[]`` in a file of schema < 8
        opened read-only."""
        if "noise_floors" not in self.db.table_names():
            return []
        where, args = ("platform = ?", [platform]) if platform is not None else (None, [])
        rows = list(self.db["noise_floors"].rows_where(where, args, order_by="id"))
        for r in rows:
            r["checks"] = json.loads(r["checks"] or "[]")
            r["reasons"] = json.loads(r["reasons"] or "[]")
        return rows

    def latest_noise_floor(self, platform: str) -> dict[str, Any] | None:
        """The most recent noise floor of ``platform``, or ``None`` when the doctor never ran on it."""
        rows = self.noise_floors(platform)
        return rows[-1] if rows else None

    # -- ledger and summaries --------------------------------------------------------------------------------
    def charge(self, activity: str, seconds: float, *, platform: str | None = None, family: str | None = None,
               campaign: str | None = None, note: str | None = None) -> None:
        """Add one ledger row (fitting, querying, export, ...)."""
        self._writable()
        if not seconds >= 0:
            raise StoreError(f"seconds={seconds!r} must be a non-negative number")
        with self.db.atomic():
            self.db["ledger"].insert({"created_at": _now(), "activity": activity, "seconds": float(seconds),
                                      "platform": platform, "family": family, "campaign": campaign,
                                      "measurement_id": None, "note": note})

    def profiling_seconds(self, **where: str) -> float:
        """Seconds of profile-like activities (or of ``activity=...``), filtered by column values."""
        acts = [where.pop("activity")] if "activity" in where else list(PROFILE_ACTIVITIES)
        clause, args = f"activity in ({','.join('?' * len(acts))})", list(acts)
        for col, val in where.items():
            clause += f" and {col} = ?"
            args.append(val)
        return float(self.db.execute(f"select coalesce(sum(seconds), 0) from ledger where {clause}", args)
                     .fetchone()[0])

    def status(self) -> dict[str, Any]:
        """Counts and profiling hours per platform and family (what ``python -m acquisition status`` shows)."""
        per = self.db.execute(
            "select m.platform, m.family, sum(m.status = 'ok'), sum(m.status = 'failed'), sum(m.stable = 0 and "
            "m.status = 'ok'), coalesce((select sum(l.seconds) from ledger l where l.platform = m.platform and "
            "l.family = m.family and l.activity in ('profile', 'validation_profile', 'network_profile')), 0) "
            "from measurements m group by m.platform, m.family order by m.platform, m.family").fetchall()
        from profiler.devices import platform_label

        plats = {p["id"]: p for p in self.platforms()}
        groups = [{"platform": p, "device": plats.get(p, {}).get("device"), "family": f, "ok": ok, "failed": bad,
                   "unstable": unst, "profiling_hours": s / 3600} for p, f, ok, bad, unst, s in per]
        total = self.db.execute("select count(*), coalesce(sum(status = 'failed'), 0) from measurements").fetchone()
        return {
            "database": os.path.abspath(self.path),
            "schema_version": self.schema_version,
            "platforms": [{"id": p["id"], "device": p["device"], "kind": p["kind"],
                           "model": p["fingerprint"].get("gpu") or p["fingerprint"].get("cpu_model"),
                           "threads": p["fingerprint"].get("threads"), "torch": p["fingerprint"].get("torch"),
                           "dtype": p["fingerprint"].get("dtype", "float32"),
                           "batch_size": p["fingerprint"].get("batch_size", 1),
                           "label": platform_label(p["fingerprint"])}
                          for p in plats.values()],
            "families": groups,
            "measurements": int(total[0]),
            "failed": int(total[1]),
            "profiling_hours": self.profiling_seconds() / 3600,
            "campaigns": [self._campaign_summary(c) for c in self.campaigns()],
        }
