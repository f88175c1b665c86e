"""The store's noise tables: stored measurements measured again in a fresh process (``repeats``: the noise
ceiling) and what ``python -m acquisition doctor`` found on a platform (``noise_floors``).

Mixed into :class:`acquisition.store.Store`; every write is one transaction with its ledger row.
"""

from __future__ import annotations

import json
from typing import Any

from acquisition._schema import NOISE_FLOOR_COLUMNS, StoreError, fault_point, now
from acquisition._store_base import Tables

__all__ = ["NoiseTables"]


class NoiseTables(Tables):
    """Repeats and noise floors (``self.db``, ``self.path`` and ``self._writable`` are the store's)."""

    db: Any
    path: str

    def _writable(self) -> None:  # pragma: no cover - provided by Store
        raise NotImplementedError

    def record_repeat(self, m: Any, measurement_id: int, *, activity: str = "noise_profile") -> int:
        """Store ``m``, a fresh-process re-measurement of stored measurement ``measurement_id``, and charge its
        cost to the ledger, atomically. The stored measurement itself is never changed."""
        self._writable()
        t = m.timing
        row = {"measurement_id": int(measurement_id), "status": m.status, "reason": m.reason,
               "min_ms": t.min_ms if t else None, "median_ms": t.median_ms if t else None,
               "p10_ms": t.p10_ms if t else None, "p90_ms": t.p90_ms if t else None, "n": t.n if t else None,
               "cost_s": m.cost_s, "stable": int(bool(m.stable)), "noise": getattr(t, "noise", None) if t else None,
               "created_at": now()}
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

    def record_noise_floor(self, platform: str, result: dict[str, Any]) -> int:
        """Store what ``python -m acquisition doctor`` found on ``platform`` (a
        :meth:`profiler.doctor.DoctorReport.as_row`) and charge its wall time to the ledger as
        ``noise_profile`` (note ``doctor``), atomically. ``checks`` and ``reasons`` are stored as JSON."""
        self._writable()
        if not self.db["platforms"].count_where("id = ?", [platform]):
            raise StoreError(f"platform {platform!r} is not in database {self.path!r}: ensure_platform() first")
        seconds = float(result.get("seconds") or 0.0)
        if not seconds >= 0:
            raise StoreError(f"seconds={result.get('seconds')!r} must be a non-negative number")
        row = {c: result.get(c) for c in NOISE_FLOOR_COLUMNS if c not in ("id", "platform", "created_at", "checks",
                                                                          "reasons")}
        row.update(platform=platform, created_at=now(), seconds=seconds,
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
