"""The SQLite store: platforms, measurements and the cost ledger, in one file (sqlite-utils, WAL).

The coordinator is the only writer. Every state change (a measurement and its ledger row) is one transaction.
The file is marked as ours (``PRAGMA application_id``) and versioned (``PRAGMA user_version``): opening a file
that is not an SQLite database, another program's database, or a database written by a newer version fails
with :class:`StoreError` before anything is written.

Each measurement keeps its own noise estimate (``noise``: the spread of its buffer placements' minima, schema 8),
and ``noise_floors`` keeps what ``python -m acquisition doctor`` found on a platform (:mod:`profiler.doctor`).

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
from collections.abc import Iterable, Iterator
from typing import Any

from acquisition._campaign_store import CampaignTables, create_campaign_tables
from acquisition._ledger_store import LedgerQueries
from acquisition._noise_store import NoiseTables
from acquisition._schema import (  # noqa: F401 - the schema's names are the store's
    APPLICATION_ID,
    MEASUREMENT_COLUMNS,
    MIGRATIONS,
    NOISE_FLOOR_COLUMNS,
    PROFILE_ACTIVITIES,
    REPEAT_COLUMNS,
    SCHEMA_VERSION,
    StoreError,
    _create_noise_floors,
    _create_repeats,
    check_file,
    fault_point,
    now,
    open_database,
)

__all__ = ["APPLICATION_ID", "MIGRATIONS", "PROFILE_ACTIVITIES", "SCHEMA_VERSION", "Store", "StoreError", "fault_point",
           "open_database"]

class Store(CampaignTables, LedgerQueries, NoiseTables):
    """One latency-acquisition database file. Use as a context manager; see the module docstring.

    ``readonly=True`` opens an existing file without any write (the file must exist); otherwise the file is
    created if missing, after checking that its directory is writable.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        check_file(self.path, must_exist=readonly, writable=not readonly)
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
                                             "created_at": now()})

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
            "placements": getattr(t, "placements", None) if t else None, "created_at": now(),
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
                                                         "role": role, "created_at": now(), "drawn": drawn},
                                                        ignore=True)
            fault_point("record")
        return int(mid)

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

    # -- ledger and summaries --------------------------------------------------------------------------------
    def charge(self, activity: str, seconds: float, *, platform: str | None = None, family: str | None = None,
               campaign: str | None = None, note: str | None = None) -> None:
        """Add one ledger row (fitting, querying, export, ...)."""
        self._writable()
        if not seconds >= 0:
            raise StoreError(f"seconds={seconds!r} must be a non-negative number")
        with self.db.atomic():
            self.db["ledger"].insert({"created_at": now(), "activity": activity, "seconds": float(seconds),
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
