"""The stop decision of one iteration: the campaign's stop rule on its verified metrics, and its budgets.

Contract: :func:`check_stop` reads the store (the streak so far, the bill, what was asked) and returns a
:class:`StopCheck`; its ``state`` is ``None`` while the campaign goes on, else how it ends (``met``, ``budget``).
The rules themselves are pluggable (:mod:`acquisition.stopping`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acquisition.bill import campaign_bill
from acquisition.campaign import CampaignSpec
from acquisition.contracts import CampaignStore
from acquisition.stopping import get_stop_rule

__all__ = ["StopCheck", "budget_left", "check_stop"]


@dataclass
class StopCheck:
    """What the stop rule read at one iteration, and what it decided (``state``: ``None`` to go on)."""

    ok_now: bool  # the verified targets are met at this iteration (on enough verification rows)
    met_streak: int
    reached: bool  # the rule has fired at this iteration or an earlier one
    bill_s: float
    n_asked: int  # training configurations the campaign holds (failed ones too)
    budget_left: dict[str, Any]
    state: str | None
    fired: bool = False  # the rule fired at this iteration


def check_stop(store: CampaignStore, spec: CampaignSpec, m: dict[str, float], n_train: int) -> StopCheck:
    """The stop rule (``spec.stop_rule``, :mod:`acquisition.stopping`): it passes this iteration or not, and
    fires after as many consecutive passes (each on more rows) as it needs; or a budget is spent. ``m``: the
    iteration's verified metrics; ``n_train``: its training rows."""
    rule = get_stop_rule(spec.stop_rule)
    ok_now = rule.passes(m, spec)
    met_streak = _met_streak(store, spec, n_train) + 1 if ok_now else 0
    fired = met_streak >= rule.needed(spec)
    bill_s = campaign_bill(store, spec.name).total_s
    # configurations asked for (failed ones too; a probe re-measures one, it is not another sample)
    n_asked = len({r["key"] for r in store.members(spec.name, "train")})
    left = budget_left(spec, n_asked, bill_s)
    reached = fired or any(r["met_streak"] >= rule.needed(spec) for r in store.iterations(spec.name))
    state = None
    if fired and spec.stop_on_target:
        state = "met"
    elif left["exhausted"]:
        state = "met" if reached else "budget"
    return StopCheck(bool(ok_now), met_streak, reached, bill_s, n_asked, left, state, fired)


def _met_streak(store: Any, spec: CampaignSpec, n_train: int) -> int:
    """The streak before an iteration on ``n_train`` rows: iterations on as many rows (a resumed run that fits
    the same data again) do not count twice."""
    rows = [r for r in store.iterations(spec.name) if r["n_train"] < n_train]
    return int(rows[-1]["met_streak"]) if rows else 0


def budget_left(spec: CampaignSpec, n_train: int, profiling_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"exhausted": False}
    if spec.budget_samples is not None:
        out["samples"] = spec.budget_samples - n_train
        out["exhausted"] |= n_train >= spec.budget_samples
    if spec.budget_hours is not None:
        out["hours"] = spec.budget_hours - profiling_s / 3600
        out["exhausted"] |= profiling_s / 3600 >= spec.budget_hours
    return out
