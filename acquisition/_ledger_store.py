"""The ledger's and the measurements' summaries: every read the reports, the bill and the replay cost model need.

Mixed into :class:`acquisition.store.Store`, so that no module outside the store writes SQL against its tables.
"""

from __future__ import annotations

from typing import Any

from acquisition._store_base import Tables

__all__ = ["LEDGER_GROUP_COLUMNS", "LedgerQueries"]

#: Columns a ledger summary may be grouped by.
LEDGER_GROUP_COLUMNS = ("activity", "platform", "family", "campaign")


class LedgerQueries(Tables):
    """Read-only summaries of the ledger and the measurements (``self.db`` is the store's database)."""

    def ledger_groups(self, by: list[str], *, campaign: str | None = None) -> list[dict[str, Any]]:
        """Ledger rows grouped by the columns ``by`` (of :data:`LEDGER_GROUP_COLUMNS`): each group's values,
        ``rows`` and ``seconds``, ordered by the groups; only ``campaign``'s rows when it is given."""
        bad = [c for c in by if c not in LEDGER_GROUP_COLUMNS]
        if bad or not by:
            raise ValueError(f"by={by!r} is not allowed: expected columns of {', '.join(LEDGER_GROUP_COLUMNS)}")
        sel = ", ".join(by)
        where, args = ("where campaign = ?", [campaign]) if campaign else ("", [])
        cur = self.db.execute(f"select {sel}, count(*) as rows, sum(seconds) as seconds from ledger {where} "
                              f"group by {sel} order by {sel}", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def lost_seconds(self, *, campaign: str | None = None) -> dict[str, float]:
        """Device seconds lost on fleet actors that died (``lost_profile``), per platform."""
        where, args = ("and campaign = ?", [campaign]) if campaign else ("", [])
        return {p: float(s or 0.0) for p, s in self.db.execute(
            f"select platform, sum(seconds) from ledger where activity = 'lost_profile' {where} group by platform",
            args).fetchall()}

    def fleet_actor_rows(self, *, campaign: str | None = None) -> list[tuple[str, str, str, int, float]]:
        """(platform, actor, host, measurements, device seconds) per fleet actor (``device_state.fleet``)."""
        where, args = "", []
        if campaign:
            where, args = ("and id in (select measurement_id from campaign_measurements where campaign = ?)",
                           [campaign])
        return [tuple(r) for r in self.db.execute(
            "select platform, json_extract(device_state, '$.fleet.actor') as actor, "
            "json_extract(device_state, '$.fleet.host') as host, count(*), coalesce(sum(cost_s), 0) "
            f"from measurements where json_extract(device_state, '$.fleet.actor') is not null {where} "
            "group by platform, actor, host order by platform, actor", args).fetchall()]

    def campaign_costs(self, campaign: str) -> tuple[dict[str, float], int, float]:
        """The device seconds of ``campaign``'s measurements per role, their number, and the seconds lost on dead
        fleet actors while it ran: what :func:`acquisition.bill.campaign_bill` adds up."""
        if not self.has_table("campaign_measurements"):
            return {}, 0, 0.0
        rows = self.db.execute(
            "select cm.role, coalesce(sum(m.cost_s), 0), count(*) from campaign_measurements cm join measurements "
            "m on m.id = cm.measurement_id where cm.campaign = ? group by cm.role", [campaign]).fetchall()
        lost = self.db.execute("select coalesce(sum(seconds), 0) from ledger where campaign = ? and activity = "
                               "'lost_profile'", [campaign]).fetchone()[0]
        return {str(r): float(s) for r, s, _ in rows}, int(sum(c for _, _, c in rows)), float(lost or 0.0)

    def charged_profiles(self) -> list[tuple[float, float, str, str]]:
        """(min latency ms, seconds charged, platform, protocol) of every ledger profiling row that belongs to an
        ok measurement: what this machine's profiler really charged per block."""
        return [tuple(r) for r in self.db.execute(
            "select m.min_ms, l.seconds, m.platform, m.protocol from ledger l join measurements m on "
            "m.id = l.measurement_id where m.status = 'ok' and l.activity in ('profile', 'validation_profile', "
            "'test_profile') and m.min_ms > 0 and l.seconds > 0").fetchall()]
