"""One bill: the device seconds a campaign cost, defined once and read everywhere.

A campaign's **bill** is the sum of the profiling cost (``cost_s``) of every measurement it used, whatever its
role (training, verification, probes) and status (ok, failed, unstable): the cost of a measurement already
includes its retries and re-measurements in fresh workers, and a failed block took device time too. A
measurement that the campaign reused from the store (profiled earlier by another campaign or by ``profile``)
counts at its original cost, so a campaign's bill does not depend on what else is in the database; the ledger
still says who paid for it first. Device time lost on a fleet actor that died mid-block (ledger activity
``lost_profile``, charged to the campaign; the block itself was measured again elsewhere) is in the bill as the
role ``lost``.

The budget in hours, the stop rule's record of each iteration (``profiling_s``), :class:`CampaignResult`, the
``report`` command, the studies and every plot's hours axis use :func:`campaign_bill`; nothing else adds
profiling seconds up for a campaign.

Example:
    >>> import os, tempfile
    >>> from acquisition.store import Store
    >>> with Store(os.path.join(tempfile.mkdtemp(), "a.sqlite")) as store:
    ...     campaign_bill(store, "none").total_s
    0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Bill", "campaign_bill"]


@dataclass(frozen=True)
class Bill:
    """Device seconds of a campaign, in total and by role (``train``, ``validation``, ...)."""

    by_role: dict[str, float] = field(default_factory=dict)
    measurements: int = 0

    @property
    def total_s(self) -> float:
        return float(sum(self.by_role.values()))

    @property
    def hours(self) -> float:
        return self.total_s / 3600

    def role_hours(self, role: str) -> float:
        return self.by_role.get(role, 0.0) / 3600


def campaign_bill(store: Any, campaign: str) -> Bill:
    """The campaign's bill (see the module docstring)."""
    by_role, n, lost = store.campaign_costs(campaign)
    if lost:
        by_role["lost"] = lost
    return Bill(by_role, n)
