"""Stop rules: when a campaign may claim its targets (pluggable, like Optuna's pruners).

**The contract.** A stop rule is an object with a ``name`` and two methods:

- ``passes(metrics, spec) -> bool``: whether one iteration's verified metrics (``spearman``, ``spearman_lo``,
  ``acc10``, ``acc10_lo``, ``mape``, ``mape_hi``, ``n_verify``: :mod:`acquisition.verification`) meet the
  targets of ``spec`` (:class:`acquisition.campaign.CampaignSpec`) by the rule's standard;
- ``needed(spec) -> int``: how many consecutive passing iterations, each fitted on more rows, fire the rule.

The engine calls ``passes`` once per iteration, keeps the streak (``iterations.met_streak``) and stops the
campaign when it reaches ``needed`` (and ``stop_on_target``). A rule holds no state of its own: everything it
decides from is stored, so a resumed campaign decides the same. Register a rule with :func:`register_stop_rule`
(or the ``latency_acquisition.stop_rules`` entry point) and name it with ``--stop-rule``.

Built-ins:

- ``bound`` (default): every target's one-sided 95 % confidence bound meets it — the lower bound of ρ and of
  ±10 % accuracy, the upper bound of MAPE — on ``confirm`` (2) consecutive iterations. No fixed number of rows:
  the bound widens as rows get few (and is undefined below 15), so a model far above the target is claimed from
  few rows and one near it keeps measuring. What it controls is the false-stop rate (never-seen ρ below the
  target at the stop): once (``confirm=1``) stopped falsely on 6 of 80 replayed campaigns, three of them on one
  benchmark; twice running on none (the studies of the design notes).
- ``streak``: the point estimates meet the targets on ``confirm`` consecutive iterations with at least
  :data:`MIN_VERIFY_ROWS` verification rows — the rule before bounds, and the naive way's (a holdout set).

Example:
    >>> from acquisition.campaign import CampaignSpec
    >>> spec = CampaignSpec(name="x", family="mbconv", target_spearman=0.98)
    >>> rule = get_stop_rule("bound")
    >>> rule.passes({"spearman": 0.995, "spearman_lo": 0.985, "n_verify": 40}, spec), rule.needed(spec)
    (True, 2)
    >>> get_stop_rule("streak").passes({"spearman": 0.995, "spearman_lo": 0.985, "n_verify": 40}, spec)
    False
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

__all__ = ["DEFAULT_STOP_RULE", "MIN_VERIFY_ROWS", "BoundRule", "StopRule", "StopRuleError", "StreakRule",
           "get_stop_rule", "list_stop_rules", "register_stop_rule"]

MIN_VERIFY_ROWS = 50  # the streak rule's floor (ρ from 30 rows is ±0.01 at 0.98)
DEFAULT_STOP_RULE = "bound"


class StopRuleError(ValueError):
    """An unknown stop rule, or one that does not keep the contract."""


@runtime_checkable
class StopRule(Protocol):
    name: str

    def passes(self, metrics: dict[str, float], spec: Any) -> bool: ...

    def needed(self, spec: Any) -> int: ...


def _ge(v: Any, target: float) -> bool:
    return v is not None and math.isfinite(float(v)) and float(v) >= target


def _le(v: Any, target: float) -> bool:
    return v is not None and math.isfinite(float(v)) and float(v) <= target


def _meets(metrics: dict[str, float], spec: Any, rho: str, acc10: str, mape: str) -> bool:
    """Whether the metrics named ``rho``, ``acc10`` and ``mape`` meet the spec's targets (those it sets)."""
    ok = _ge(metrics.get(rho), spec.target_spearman)
    if spec.target_acc10 is not None:
        ok = ok and _ge(metrics.get(acc10), spec.target_acc10)
    if spec.target_mape is not None:
        ok = ok and _le(metrics.get(mape), spec.target_mape)
    return bool(ok)


class BoundRule:
    """Every target's one-sided confidence bound meets it, on ``spec.confirm`` consecutive iterations (see the
    module docstring)."""

    name = "bound"

    def passes(self, metrics: dict[str, float], spec: Any) -> bool:
        return _meets(metrics, spec, "spearman_lo", "acc10_lo", "mape_hi")

    def needed(self, spec: Any) -> int:
        return int(spec.confirm)


class StreakRule:
    """The point estimates meet the targets on ``spec.confirm`` consecutive iterations, with at least
    :data:`MIN_VERIFY_ROWS` verification rows (or the whole validation set, if smaller)."""

    name = "streak"

    def passes(self, metrics: dict[str, float], spec: Any) -> bool:
        floor = MIN_VERIFY_ROWS if spec.verification != "holdout" else min(MIN_VERIFY_ROWS, spec.validation_size)
        return float(metrics.get("n_verify") or 0) >= floor and _meets(metrics, spec, "spearman", "acc10", "mape")

    def needed(self, spec: Any) -> int:
        return int(spec.confirm)


_RULES: dict[str, StopRule] = {"bound": BoundRule(), "streak": StreakRule()}


def register_stop_rule(rule: StopRule) -> StopRule:
    """Register ``rule`` under ``rule.name`` (replacing one of that name); returns it."""
    if not isinstance(rule, StopRule) or not isinstance(getattr(rule, "name", None), str) or not rule.name:
        raise StopRuleError(f"{rule!r} is not a stop rule: it needs a name, passes(metrics, spec) and needed(spec)")
    _RULES[rule.name] = rule
    return rule


def _register_entry_point(name: str, obj: Any) -> None:
    rule = obj() if isinstance(obj, type) else obj
    if getattr(rule, "name", None) != name:
        raise StopRuleError(f"entry point {name!r} names a stop rule called {getattr(rule, 'name', None)!r}")
    register_stop_rule(rule)


def _load_plugins() -> None:
    """Register the installed plug-in stop rules (entry point group ``latency_acquisition.stop_rules``), once."""
    from profiler.plugins import GROUPS, load_entry_points

    load_entry_points(GROUPS["stop_rules"], _register_entry_point)


def list_stop_rules() -> list[str]:
    _load_plugins()
    return sorted(_RULES)


def get_stop_rule(name: str) -> StopRule:
    """The stop rule registered as ``name``; :class:`StopRuleError` naming the known ones otherwise."""
    _load_plugins()
    try:
        return _RULES[name]
    except (KeyError, TypeError):
        raise StopRuleError(f"stop rule {name!r} is unknown: available stop rules are "
                            f"{', '.join(sorted(_RULES))}") from None
