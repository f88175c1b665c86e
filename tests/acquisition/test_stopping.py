"""Stop rules (acquisition.stopping): the contract every rule keeps (one shared test over the built-ins and a
plug-in), the built-ins' decisions, and the engine calling a rule once per iteration and stopping when it fires."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import acquisition.stopping as stopping
from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import run_campaign
from acquisition.stopping import BoundRule, StopRuleError, get_stop_rule, list_stop_rules, register_stop_rule
from acquisition.store import Store
from profiler.families import get_family
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK

FAM = get_family("mbconv")
NAN = float("nan")


def spec(**kw) -> CampaignSpec:
    base = {"name": "s1", "family": "mbconv", "model": QUICK, "target_spearman": 0.97, "budget_samples": 200,
            "batch_size": 20, "initial_size": 20, "pool_size": 500, "folds": 3}
    base.update(kw)
    return CampaignSpec(**base).validate()


class EveryThird:
    """A plug-in rule: passes at every third call's worth of rows (from the metrics alone: n_verify >= 30)."""

    name = "thirty-rows"

    def passes(self, metrics: dict[str, float], spec) -> bool:
        return float(metrics.get("n_verify") or 0) >= 30

    def needed(self, spec) -> int:
        return 2


METRICS = [
    {"spearman": 0.999, "spearman_lo": 0.995, "acc10": 0.95, "acc10_lo": 0.9, "mape": 3.0, "mape_hi": 4.0,
     "n_verify": 80.0},
    {"spearman": 0.5, "spearman_lo": 0.2, "acc10": 0.1, "acc10_lo": 0.05, "mape": 60.0, "mape_hi": 80.0,
     "n_verify": 20.0},
    {"spearman": NAN, "spearman_lo": NAN, "acc10": NAN, "acc10_lo": NAN, "mape": NAN, "mape_hi": NAN,
     "n_verify": 0.0},
]


@pytest.fixture
def fresh_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stopping, "_RULES", dict(stopping._RULES))


@pytest.mark.usefixtures("fresh_rules")
@pytest.mark.parametrize("name", ["bound", "streak", "thirty-rows"])
def test_every_rule_keeps_the_contract(name: str) -> None:
    register_stop_rule(EveryThird())
    rule = get_stop_rule(name)
    assert isinstance(rule, stopping.StopRule) and rule.name == name
    for s in (spec(), spec(target_acc10=0.8, target_mape=10.0), spec(verification="holdout")):
        needed = rule.needed(s)
        assert isinstance(needed, int) and needed >= 1
        for m in METRICS:
            first = rule.passes(dict(m), s)
            assert isinstance(first, bool)
            assert rule.passes(dict(m), s) is first, "a rule holds no state: the same metrics, the same answer"
        assert rule.passes(dict(METRICS[2]), s) is False  # nothing verified yet: no claim


def test_bound_reads_the_bounds_and_streak_the_points() -> None:
    s = spec(target_spearman=0.98)
    bound, streak = get_stop_rule("bound"), get_stop_rule("streak")
    near = {"spearman": 0.99, "spearman_lo": 0.975, "n_verify": 200.0}
    assert not bound.passes(near, s) and streak.passes(near, s)
    few = {"spearman": 0.995, "spearman_lo": 0.985, "n_verify": 25.0}
    assert bound.passes(few, s) and not streak.passes(few, s), "streak keeps its floor of 50 rows"
    both = spec(target_spearman=0.98, target_acc10=0.9, target_mape=5.0)
    ok = {"spearman_lo": 0.99, "acc10_lo": 0.91, "mape_hi": 4.0, "n_verify": 60.0}
    assert bound.passes(ok, both)
    assert not bound.passes({**ok, "acc10_lo": 0.85}, both) and not bound.passes({**ok, "mape_hi": 6.0}, both)
    assert bound.needed(s) == 2 and bound.needed(spec(confirm=1)) == 1 and streak.needed(spec(confirm=3)) == 3


def test_unknown_and_broken_rules_are_named() -> None:
    with pytest.raises(StopRuleError, match="stop rule 'nope' is unknown: available stop rules are bound, streak"):
        get_stop_rule("nope")
    with pytest.raises(StopRuleError, match="is not a stop rule"):
        register_stop_rule(object())  # type: ignore[arg-type]
    with pytest.raises(CampaignError, match="stop rule 'nope' is unknown"):
        spec(stop_rule="nope")
    assert list_stop_rules()[:2] == ["bound", "streak"]


@pytest.mark.usefixtures("fresh_rules")
def test_the_engine_stops_when_a_plugged_rule_fires(tmp_path: Path) -> None:
    calls: list[float] = []

    class Counting(EveryThird):
        def passes(self, metrics, spec) -> bool:
            calls.append(float(metrics["n_verify"]))
            return super().passes(metrics, spec)

    register_stop_rule(Counting())
    with Store(tmp_path / "r.sqlite") as store:
        res = run_campaign(store, spec(stop_rule="thirty-rows", verification="cv", target_spearman=0.5),
                           SyntheticProfiler(), FAM)
        its = store.iterations("s1")
        assert res.state == "met" and len(calls) == len(its), "one call per iteration"
        fired = [bool(it["fired"]) for it in its]
        assert fired == [False] * (len(its) - 1) + [True]
        assert [it["met_streak"] for it in its][-2:] == [1, 2] and calls[-2] >= 30 > calls[-3]
        assert {it["stop_rule"] for it in its} == {"thirty-rows"}


def test_bound_claims_a_good_model_before_the_streak_floor(tmp_path: Path) -> None:
    with Store(tmp_path / "b.sqlite") as store:
        res = run_campaign(store, spec(name="b", strategy="random", confirm=1), SyntheticProfiler(), FAM)
        its = store.iterations("b")
        assert res.state == "met" and its[-1]["fired"] and its[-1]["stop_rule"] == "bound"
        assert its[-1]["spearman_lo"] >= 0.97 > min(it["spearman_lo"] if it["spearman_lo"] is not None else 0
                                                    for it in its[:-1])
        assert its[-1]["n_verify"] < stopping.MIN_VERIFY_ROWS, "no fixed floor of verification rows"
        assert not any(it["fired"] for it in its[:-1])
        assert all(it["spearman_lo"] is None or math.isfinite(it["spearman_lo"]) for it in its)


def test_a_bound_rule_subclass_is_a_rule() -> None:
    class Strict(BoundRule):
        name = "strict"

        def needed(self, spec) -> int:
            return 3

    assert isinstance(Strict(), stopping.StopRule) and Strict().needed(spec()) == 3
