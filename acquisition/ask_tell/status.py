"""Where an ask/tell campaign stands: :class:`CampaignStatus`, read from the store by :func:`status_of`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acquisition.engine import END_STATES
from acquisition.stopping import get_stop_rule

__all__ = ["CampaignStatus", "status_of"]


@dataclass(frozen=True)
class CampaignStatus:
    """Where a campaign stands (:meth:`Campaign.status`).

    ``samples``: configurations measured for training (failed ones too; the budget in samples counts these);
    ``device_hours``: the campaign's bill (:mod:`acquisition.bill`); ``metrics``: the last iteration's verified
    ``spearman``, ``mape``, ``acc10`` and ``n_verify`` (empty before the first fit); ``met``: the stop rule has
    fired (targets met on ``confirm`` consecutive iterations); ``budget_left``: ``samples`` and/or ``hours``
    left; ``pending``: configurations asked for and not told yet.
    """

    name: str
    family: str
    platform: str
    protocol: str
    state: str  # running | met | budget | exhausted | failed | stopped
    samples: int
    failed: int
    pending: int
    iterations: int
    device_hours: float
    metrics: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    met: bool = False
    budget_left: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in END_STATES

    def describe(self) -> str:
        """One line for people: state, samples, hours, ρ against the target, budget left, pending."""
        rho = self.metrics.get("spearman")
        rho_s = ("not fitted yet" if not self.iterations else "rho not verified yet" if rho is None or rho != rho
                 else f"rho {rho:.4f}")
        left = ", ".join(f"{v:.4g} {k}" for k, v in self.budget_left.items())
        return (f"campaign {self.name}: {self.state}; {self.samples} samples, {self.device_hours:.4f} device hours; "
                f"{rho_s} (target {self.targets.get('spearman')})" + (f"; budget left {left}" if left else "")
                + f"; {self.pending} pending")


def status_of(store: Any, spec: Any, name: str, family: str, platform: str, protocol: str) -> CampaignStatus:
    """The :class:`CampaignStatus` of campaign ``name`` as ``store`` holds it (``spec``: its settings)."""
    from acquisition.bill import campaign_bill
    from acquisition.loop.stop import budget_left

    row = store.get_campaign(name)
    members = store.members(name, "train")
    keys = {r["key"] for r in members}
    failed = {r["key"] for r in members if r["status"] == "failed"}
    bill_s = campaign_bill(store, name).total_s
    its = store.iterations(name)
    metrics = ({k: its[-1][k] for k in ("spearman", "spearman_lo", "mape", "acc10", "n_verify")} if its else {})
    targets = {"spearman": spec.target_spearman, "acc10": spec.target_acc10, "mape": spec.target_mape}
    left = {k: v for k, v in budget_left(spec, len(keys), bill_s).items() if k != "exhausted"}
    needed = get_stop_rule(spec.stop_rule).needed(spec)
    met = row["state"] == "met" or any(r["met_streak"] >= needed for r in its)
    return CampaignStatus(name, family, platform, protocol, row["state"], len(keys), len(failed),
                          len(store.pending_asks(name)), len(its), bill_s / 3600, metrics,
                          {k: v for k, v in targets.items() if v is not None}, met, left)
