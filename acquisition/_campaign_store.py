"""Campaign tables of the store (schema 9): campaigns, their measurements, iterations, predictors, sources, asks.

Mixed into :class:`acquisition.store.Store`; every write is one transaction. A database of schema 1 gains these
tables (empty) the first time it is opened for writing; opened read-only, it simply has no campaigns. Schema 3
adds how each campaign measurement was drawn (``drawn``: ``random`` picks are an unbiased sample of the
candidates, which verification relies on) and, per iteration, how the model was verified and on how many rows,
and the metrics on never-seen rows that a study's judge measured (NULL in ordinary campaigns). Schema 4 adds
the fidelity of the batch each iteration asked for and what the probes measured (:mod:`acquisition.fidelity`);
``drawn = probe`` marks a full-fidelity re-measurement of a configuration first measured cheaply. Schema 6
adds, per iteration, the model the campaign kept (``transfer:gbt`` when it stands on transfer sources) and
``transfer_gain`` (out-of-fold ρ of the transfer model minus the plain one's), and the table
``campaign_sources``: every source a campaign was given, its agreement on the probe set and whether it was used
(:mod:`acquisition.transfer`). Schema 7 adds ``campaigns.protocol`` (the measurement protocol a campaign was
created with: a resume with another is refused) and ``campaign_asks``: every configuration a campaign asked to
have measured (role, how it was drawn, protocol, and the batch that asked it: ``validation``, ``initial`` or the
iteration). An ask is *pending* until the campaign holds a measurement of its key with its protocol, so a crash
between asking and measuring re-asks the same configurations (:mod:`acquisition.ask_tell`). Schema 9 adds,
per ask, the log-latency the asking iteration's model predicted before the configuration was measured and that
model's number of training rows (``pred_log``, ``pred_n``: prequential evidence, :mod:`acquisition.verification`),
and per iteration the stop rule, whether it fired, the bounds it read (``acc10_lo``, ``mape_hi``; ``spearman_lo``
and ``spearman_hi`` are one-sided 95 % bounds since then) and the committee's out-of-fold ρ (``cv_spearman``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from acquisition._store_base import Tables

__all__ = ["CampaignTables", "create_campaign_tables", "to_schema_3", "to_schema_4", "to_schema_6", "to_schema_7",
           "to_schema_9"]

ITERATION_COLUMNS: dict[str, type] = {
    "id": int, "campaign": str, "iteration": int, "n_train": int, "profiling_s": float, "spearman": float,
    "spearman_lo": float, "spearman_hi": float, "mape": float, "acc10": float, "coverage80": float,
    "fit_s": float, "query_s": float, "met": int, "met_streak": int, "created_at": str,
    # schema 3
    "verification": str, "n_verify": int, "test_spearman": float, "test_acc10": float, "test_mape": float,
    # schema 4
    "fidelity": str, "fidelity_pairs": int, "fidelity_offset": float, "fidelity_noise": float,
    # schema 6
    "model": str, "transfer_gain": float,
    # schema 9
    "stop_rule": str, "fired": int, "acc10_lo": float, "mape_hi": float, "cv_spearman": float,
    # schema 10: asks pending while the iteration chose (pipelined: a batch in flight), and how many of them the
    # device had measured or started by the time it decided (what a stop there would still have measured)
    "pending": int, "inflight": int,
}
SCHEMA3_ITERATION_COLUMNS = ("verification", "n_verify", "test_spearman", "test_acc10", "test_mape")
SCHEMA4_ITERATION_COLUMNS = ("fidelity", "fidelity_pairs", "fidelity_offset", "fidelity_noise")
SCHEMA6_ITERATION_COLUMNS = ("model", "transfer_gain")
SCHEMA9_ITERATION_COLUMNS = ("stop_rule", "fired", "acc10_lo", "mape_hi", "cv_spearman")
SCHEMA10_ITERATION_COLUMNS = ("pending", "inflight")
SOURCE_COLUMNS: dict[str, type] = {
    "campaign": str, "name": str, "kind": str, "rows": int, "agreement": float, "used": int, "reason": str,
    "detail": str, "created_at": str,
}
DRAWN = ("random", "strategy", "initial", "validation", "probe")
ASK_COLUMNS: dict[str, type] = {
    "id": int, "campaign": str, "key": str, "protocol": str, "config": str, "role": str, "drawn": str, "batch": str,
    "created_at": str,
    # schema 9: the log-latency the model of the asking iteration predicted before the row was measured, and how
    # many training rows that model had (prequential verification, acquisition.verification)
    "pred_log": float, "pred_n": int,
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _add_columns(db: Any, table: str, names: tuple[str, ...], types: dict[str, type]) -> None:
    have = db[table].columns_dict
    for c in names:
        if c not in have:
            db[table].add_column(c, types[c])


# The campaign tables' numbered migrations: each brings them from the schema before to the schema it is named
# for (acquisition.store.MIGRATIONS runs them in order, inside one transaction). A step finds what a newer
# create_campaign_tables made already and leaves it: existing rows get NULL in new columns, nothing is rewritten.
def to_schema_3(db: Any) -> None:
    """How each campaign measurement was drawn; how each iteration was verified, and its never-seen metrics."""
    _add_columns(db, "campaign_measurements", ("drawn",), {"drawn": str})
    _add_columns(db, "iterations", SCHEMA3_ITERATION_COLUMNS, ITERATION_COLUMNS)


def to_schema_4(db: Any) -> None:
    """The fidelity each iteration asked for and what its probes measured."""
    _add_columns(db, "iterations", SCHEMA4_ITERATION_COLUMNS, ITERATION_COLUMNS)


def to_schema_6(db: Any) -> None:
    """The model each iteration kept, the transfer model's gain, and every source a campaign was given."""
    _add_columns(db, "iterations", SCHEMA6_ITERATION_COLUMNS, ITERATION_COLUMNS)
    _create_sources(db)


def to_schema_7(db: Any) -> None:
    """The protocol a campaign was created with, and what it asked to have measured."""
    _add_columns(db, "campaigns", ("protocol",), {"protocol": str})
    _create_asks(db)


def to_schema_9(db: Any) -> None:
    """Prequential predictions with each ask; the stop rule, its bounds and the out-of-fold ρ per iteration."""
    _add_columns(db, "campaign_asks", ("pred_log", "pred_n"), ASK_COLUMNS)
    _add_columns(db, "iterations", SCHEMA9_ITERATION_COLUMNS, ITERATION_COLUMNS)


def to_schema_10(db: Any) -> None:
    """Pipelined acquisition: the asks pending while each iteration chose, and those in flight when it decided."""
    _add_columns(db, "iterations", SCHEMA10_ITERATION_COLUMNS, ITERATION_COLUMNS)


def _create_asks(db: Any) -> None:
    if "campaign_asks" in db.table_names():
        return
    db["campaign_asks"].create(ASK_COLUMNS, pk="id", not_null={"campaign", "key", "protocol", "config", "role"},
                               foreign_keys=[("campaign", "campaigns", "name")])
    db["campaign_asks"].create_index(["campaign", "key", "protocol"], unique=True)


def _create_sources(db: Any) -> None:
    if "campaign_sources" in db.table_names():
        return
    db["campaign_sources"].create(SOURCE_COLUMNS, pk=("campaign", "name"),
                                  foreign_keys=[("campaign", "campaigns", "name")])


def create_campaign_tables(db: Any) -> None:
    """Create the campaign tables as this schema has them (inside the caller's transaction); also the migration to
    schema 2, after which the later steps find their columns and tables there."""
    db["campaigns"].create({"name": str, "family": str, "platform": str, "state": str, "spec": str,
                            "created_at": str, "updated_at": str, "protocol": str}, pk="name",
                           not_null={"family", "platform", "state", "spec", "created_at"})
    db["campaign_measurements"].create({"campaign": str, "measurement_id": int, "role": str, "created_at": str,
                                        "drawn": str},
                                       pk=("campaign", "measurement_id"),
                                       foreign_keys=[("campaign", "campaigns", "name"),
                                                     ("measurement_id", "measurements", "id")])
    db["campaign_measurements"].create_index(["campaign", "role"])
    db["iterations"].create(ITERATION_COLUMNS, pk="id", foreign_keys=[("campaign", "campaigns", "name")])
    db["iterations"].create_index(["campaign", "iteration"])
    db["predictors"].create({"id": int, "campaign": str, "path": str, "metrics": str, "created_at": str}, pk="id")
    _create_sources(db)
    _create_asks(db)


class CampaignTables(Tables):
    """Campaign state in the store (see the module docstring). Expects ``self.db`` and ``self._writable``."""

    db: Any

    def _writable(self) -> None:  # pragma: no cover - provided by Store
        raise NotImplementedError

    # -- campaigns -------------------------------------------------------------------------------------------
    def get_campaign(self, name: str) -> dict[str, Any] | None:
        if not self.has_table("campaigns"):
            return None
        rows = list(self.db["campaigns"].rows_where("name = ?", [name]))
        if not rows:
            return None
        row = rows[0]
        row["spec"] = json.loads(row["spec"])
        return row

    def campaigns(self) -> list[dict[str, Any]]:
        if not self.has_table("campaigns"):
            return []
        rows = list(self.db["campaigns"].rows_where(order_by="created_at"))
        for r in rows:
            r["spec"] = json.loads(r["spec"])
        return rows

    def create_campaign(self, name: str, family: str, platform: str, spec: dict[str, Any],
                        protocol: str | None = None) -> None:
        self._writable()
        with self.db.atomic():
            self.db["campaigns"].insert({"name": name, "family": family, "platform": platform, "state": "running",
                                         "spec": json.dumps(spec, sort_keys=True), "created_at": _now(),
                                         "updated_at": _now(), "protocol": protocol})

    def set_campaign_protocol(self, name: str, protocol: str) -> None:
        """Record the protocol of a campaign stored before schema 7 (which did not keep it)."""
        self._writable()
        with self.db.atomic():
            self.db["campaigns"].update(name, {"protocol": protocol, "updated_at": _now()})

    def update_campaign_spec(self, name: str, spec: dict[str, Any]) -> None:
        self._writable()
        with self.db.atomic():
            self.db["campaigns"].update(name, {"spec": json.dumps(spec, sort_keys=True), "updated_at": _now()})

    def set_campaign_state(self, name: str, state: str) -> None:
        self._writable()
        with self.db.atomic():
            self.db["campaigns"].update(name, {"state": state, "updated_at": _now()})

    def _campaign_summary(self, c: dict[str, Any]) -> dict[str, Any]:
        its = self.iterations(c["name"])
        samples = self.db.execute("select count(*) from campaign_measurements where campaign = ? and role = 'train'",
                                  [c["name"]]).fetchone()[0]
        return {"name": c["name"], "family": c["family"], "platform": c["platform"], "state": c["state"],
                "strategy": c["spec"]["strategy"], "model": c["spec"]["model"],
                "target_spearman": c["spec"]["target_spearman"], "samples": int(samples), "iterations": len(its),
                "spearman": its[-1]["spearman"] if its else None, "updated_at": c["updated_at"]}

    # -- membership ------------------------------------------------------------------------------------------
    def add_members(self, campaign: str, measurement_ids: list[int], role: str, drawn: str | None = None) -> None:
        """Attach stored measurements to a campaign (idempotent; a reused measurement costs nothing again)."""
        self._writable()
        if not measurement_ids:
            return
        with self.db.atomic():
            self.db["campaign_measurements"].insert_all(
                [{"campaign": campaign, "measurement_id": int(i), "role": role, "created_at": _now(),
                  "drawn": drawn} for i in measurement_ids], ignore=True)

    def members(self, campaign: str, role: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The campaign's measurements (``config`` decoded), in the order they joined it."""
        if not self.has_table("campaign_measurements"):
            return []
        where, args = ["cm.campaign = ?"], [campaign]
        if role is not None:
            where.append("cm.role = ?")
            args.append(role)
        if status is not None:
            where.append("m.status = ?")
            args.append(status)
        cur = self.db.execute(
            "select m.*, cm.role as role, cm.drawn as drawn from campaign_measurements cm join measurements m "
            f"on m.id = cm.measurement_id where {' and '.join(where)} order by cm.rowid", args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["config"] = json.loads(r["config"])
        return rows

    def join_stored(self, campaign: str, platform: str, family: str, asks: list[Any]) -> list[Any]:
        """Make the stored measurements of ``asks`` (:class:`acquisition.loop.base.Asked`: key, protocol, role,
        drawn) members of ``campaign`` (failed ones too: a failure is not retried) and return the asks still to
        measure, as :func:`acquisition.profiling.profile_configs` reuses measurements."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for proto in dict.fromkeys(a.protocol for a in asks):
            rows = self.find(platform, family, proto, [a.key for a in asks if a.protocol == proto])
            found.update({(proto, k): r for k, r in rows.items()})
        if not found:
            return asks
        reused: dict[tuple[str, str | None], list[int]] = {}
        todo = []
        for a in asks:
            row = found.get((a.protocol, a.key))
            if row is None:
                todo.append(a)
            else:
                reused.setdefault((a.role, a.drawn), []).append(int(row["id"]))
        for (role, drawn), ids in reused.items():
            self.add_members(campaign, ids, role, drawn=drawn)
        return todo

    def member_keys(self, campaign: str) -> set[str]:
        if not self.has_table("campaign_measurements"):
            return set()
        cur = self.db.execute("select m.key from campaign_measurements cm join measurements m on m.id = "
                              "cm.measurement_id where cm.campaign = ?", [campaign])
        return {r[0] for r in cur.fetchall()}

    # -- asks ------------------------------------------------------------------------------------------------
    def _ask_rows(self, campaign: str, asks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"campaign": campaign, "key": a["key"], "protocol": a["protocol"],
                 "config": json.dumps(a["config"]), "role": a["role"], "drawn": a.get("drawn"),
                 "batch": None if a.get("batch") is None else str(a["batch"]), "created_at": _now(),
                 "pred_log": a.get("pred_log"), "pred_n": a.get("pred_n")} for a in asks]

    def add_asks(self, campaign: str, asks: list[dict[str, Any]]) -> None:
        """Record configurations the campaign asks to have measured (``key``, ``config``, ``protocol``, ``role``,
        ``drawn``, ``batch``); asking again for a key and protocol already asked changes nothing."""
        self._writable()
        if not asks:
            return
        with self.db.atomic():
            self.db["campaign_asks"].insert_all(self._ask_rows(campaign, asks), ignore=True)

    def drop_asks(self, campaign: str, asks: list[dict[str, Any]]) -> int:
        """Forget asks never measured (a pipelined campaign that stopped with them queued): those of ``asks``
        (``key``, ``protocol``) that no measurement of the campaign answers. Returns how many were dropped."""
        self._writable()
        pending = {(r["key"], r["protocol"]) for r in self.pending_asks(campaign)}
        gone = [(a["key"], a["protocol"]) for a in asks if (a["key"], a["protocol"]) in pending]
        if gone:
            with self.db.atomic():
                for k, p in gone:
                    self.db.execute("delete from campaign_asks where campaign = ? and key = ? and protocol = ?",
                                    [campaign, k, p])
        return len(gone)

    def _select_asks(self, campaign: str, extra: str = "", args: list[Any] | None = None) -> list[dict[str, Any]]:
        if not self.has_table("campaign_asks"):
            return []
        cur = self.db.execute("select a.* from campaign_asks a join campaigns c on c.name = a.campaign "
                              f"where a.campaign = ? {extra} order by a.id", [campaign, *(args or [])])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["config"] = json.loads(r["config"])
        return rows

    def asks(self, campaign: str, batch: str | None = None) -> list[dict[str, Any]]:
        """Every configuration ``campaign`` asked for (of one ``batch``, if given), in the order asked."""
        if batch is None:
            return self._select_asks(campaign)
        return self._select_asks(campaign, "and a.batch = ?", [str(batch)])

    def pending_asks(self, campaign: str) -> list[dict[str, Any]]:
        """The asks not answered yet: no measurement of their key with their protocol belongs to the campaign."""
        return self._select_asks(  # by the measurements' unique index, then the membership's primary key
            campaign, "and not exists (select 1 from measurements m join campaign_measurements cm on "
                      "cm.measurement_id = m.id and cm.campaign = a.campaign where m.platform = c.platform and "
                      "m.family = c.family and m.key = a.key and m.protocol = a.protocol)")

    def last_ask_batch(self, campaign: str) -> str | None:
        """The batch of the most recent ask (``None`` when the campaign never asked through this table)."""
        if not self.has_table("campaign_asks"):
            return None
        row = self.db.execute("select batch from campaign_asks where campaign = ? order by id desc limit 1",
                              [campaign]).fetchone()
        return None if row is None else row[0]

    # -- iterations and predictors ---------------------------------------------------------------------------
    def add_iteration(self, campaign: str, record: dict[str, Any], *, met_streak: int,
                      asks: list[dict[str, Any]] | None = None) -> None:
        """Store an iteration's record and, in the same transaction, the batch it asks for (``asks``)."""
        self._writable()
        row = {k: record.get(k) for k in ITERATION_COLUMNS if k not in ("id", "campaign", "created_at")}
        row.update({"campaign": campaign, "met": int(bool(record.get("met"))), "met_streak": int(met_streak),
                    "created_at": _now()})
        with self.db.atomic():
            self.db["iterations"].insert(row)
            if asks:
                self.db["campaign_asks"].insert_all(self._ask_rows(campaign, asks), ignore=True)
            self.db["campaigns"].update(campaign, {"updated_at": _now()})

    def iterations(self, campaign: str) -> list[dict[str, Any]]:
        if not self.has_table("iterations"):
            return []
        return list(self.db["iterations"].rows_where("campaign = ?", [campaign], order_by="id"))

    def iteration_count(self, campaign: str) -> int:
        if not self.has_table("iterations"):
            return 0
        return int(self.db["iterations"].count_where("campaign = ?", [campaign]))

    def add_predictor(self, campaign: str, path: str, metrics: dict[str, Any]) -> None:
        self._writable()
        with self.db.atomic():
            self.db["predictors"].insert({"campaign": campaign, "path": path,
                                          "metrics": json.dumps(metrics, default=float), "created_at": _now()})

    def set_campaign_sources(self, campaign: str, sources: list[dict[str, Any]]) -> None:
        """Record the sources a campaign was given and how each was judged (replaces a previous record)."""
        self._writable()
        keys = ("name", "kind", "rows", "agreement", "used", "reason")
        rows = [{**{k: s.get(k) for k in keys}, "campaign": campaign, "used": int(bool(s.get("used"))),
                 "agreement": None if s.get("agreement") is None or s["agreement"] != s["agreement"]
                 else float(s["agreement"]),
                 "detail": json.dumps({k: v for k, v in s.items() if k not in keys}, default=str),
                 "created_at": _now()} for s in sources]
        with self.db.atomic():
            self.db["campaign_sources"].delete_where("campaign = ?", [campaign])
            if rows:
                self.db["campaign_sources"].insert_all(rows)

    def campaign_sources(self, campaign: str) -> list[dict[str, Any]]:
        """The sources recorded for ``campaign`` (``detail`` decoded), best agreement first."""
        if not self.has_table("campaign_sources"):
            return []
        rows = list(self.db["campaign_sources"].rows_where("campaign = ?", [campaign],
                                                           order_by="agreement desc"))
        for r in rows:
            r["detail"] = json.loads(r["detail"] or "{}")
            r["used"] = bool(r["used"])
        return rows

    def predictors(self, campaign: str) -> list[dict[str, Any]]:
        if not self.has_table("predictors"):
            return []
        rows = list(self.db["predictors"].rows_where("campaign = ?", [campaign], order_by="id"))
        for r in rows:
            r["metrics"] = json.loads(r["metrics"] or "{}")
        return rows
