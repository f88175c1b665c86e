"""The acquisition loop on a synthetic oracle (instant, deterministic): reaching the target, the stop rule,
budgets, resume, the ledger, exported bundles, and every strategy inside the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import run_campaign
from acquisition.store import Store
from acquisition.strategies import list_strategies
from profiler.families import get_family
from surrogates import load_bundle
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK

FAM = get_family("mbconv")


def spec(name: str = "c1", **kw) -> CampaignSpec:
    base = {"name": name, "family": "mbconv", "strategy": "uncertainty", "model": QUICK, "target_spearman": 0.97,
            "budget_samples": 400, "batch_size": 20, "initial_size": 20, "validation_size": 60, "pool_size": 500,
            "verification": "holdout", "stop_rule": "streak",
            "pipeline": "off"}  # one fit per batch, in order: what these tests count (pipelining: test_pipeline)
    base.update(kw)
    return CampaignSpec(**base)


def ledger_profile_seconds(store: Store, campaign: str) -> float:
    return store.db.execute("select coalesce(sum(seconds), 0) from ledger where campaign = ? and activity in "
                            "('profile', 'validation_profile')", [campaign]).fetchone()[0]


def measured_cost(store: Store, campaign: str) -> float:
    return sum(r["cost_s"] for r in store.members(campaign))


@pytest.mark.slow
def test_reaches_the_target_and_exports(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    with Store(db) as store:
        res = run_campaign(store, spec(), SyntheticProfiler(), FAM, bundle_path=str(tmp_path / "c1.bundle"))
        assert res.state == "met" and res.met
        its = store.iterations("c1")
        assert its[-1]["met"] and its[-2]["met"], "the stop rule needs 2 consecutive iterations"
        assert res.n_train == its[-1]["n_train"] < 400
        assert res.n_validation == 60
        assert ledger_profile_seconds(store, "c1") == pytest.approx(measured_cost(store, "c1"))
        acts = {r[0] for r in store.db.execute("select distinct activity from ledger where campaign = 'c1'")}
        assert {"profile", "validation_profile", "fit", "evaluate", "query", "export"} <= acts
        assert store.get_campaign("c1")["state"] == "met"
        assert store.predictors("c1")[-1]["path"] == str(tmp_path / "c1.bundle")
    pred = load_bundle(tmp_path / "c1.bundle")
    # a holdout campaign exports a model refitted on training + validation rows
    assert pred.manifest["extra"]["campaign"] == "c1" and pred.manifest["n_train"] == res.n_train + 60
    assert 0 < res.overhead_share < 1


@pytest.mark.slow
def test_budget_stops_and_a_resume_extends_it(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    prof = SyntheticProfiler()
    with Store(db) as store:
        r1 = run_campaign(store, spec(target_spearman=0.9999, budget_samples=60), prof, FAM)
        assert r1.state == "budget" and r1.n_train == 60
        calls = prof.calls
        r2 = run_campaign(store, spec(target_spearman=0.9999, budget_samples=100), prof, FAM)
        assert r2.state == "budget" and r2.n_train == 100
        assert prof.calls - calls == 40, "a resume profiles only what is new (validation is reused)"
        keys = [r["key"] for r in store.members("c1")]
        assert len(keys) == len(set(keys)) == 160
        assert store.db["measurements"].count == 160
        assert ledger_profile_seconds(store, "c1") == pytest.approx(measured_cost(store, "c1"))


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite") as store:
        run_campaign(store, spec(budget_samples=40), SyntheticProfiler(), FAM)
        with pytest.raises(CampaignError, match="strategy='random'"):
            run_campaign(store, spec(budget_samples=40, strategy="random"), SyntheticProfiler(), FAM)
        with pytest.raises(CampaignError, match="platform"):
            run_campaign(store, spec(budget_samples=40), SyntheticProfiler(platform="0ther0000000"), FAM)


def test_hours_budget(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as store:
        res = run_campaign(store, spec(target_spearman=0.9999, budget_samples=None, budget_hours=0.002),
                           SyntheticProfiler(), FAM)
        assert res.state == "budget"
        assert res.profiling_hours >= 0.002  # the whole bill, validation included
        assert res.validation_hours > 0
        # it stopped at the first iteration past the budget: one batch more at most
        assert res.profiling_hours < 0.002 + 20 * 3.0 / 3600


def test_reused_measurements_are_not_charged_twice(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        run_campaign(store, spec("first", budget_samples=40), SyntheticProfiler(), FAM)
        before = store.db.execute("select count(*) from ledger where activity like '%profile'").fetchone()[0]
        run_campaign(store, spec("second", budget_samples=40), SyntheticProfiler(), FAM)
        after = store.db.execute("select count(*) from ledger where activity like '%profile'").fetchone()[0]
        # same seed: the same validation set and initial design, all reused
        assert len(store.members("second", "validation")) == 60
        assert after - before < 40


def test_failures_are_kept_but_not_fitted(tmp_path: Path) -> None:
    with Store(tmp_path / "f.sqlite") as store:
        res = run_campaign(store, spec(budget_samples=80, target_spearman=0.9999), SyntheticProfiler(fail_every=7),
                           FAM)
        failed = [r for r in store.members("c1") if r["status"] == "failed"]
        assert failed and res.state == "budget"
        assert res.n_train == len(store.members("c1", "train", status="ok"))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list_strategies())
def test_every_strategy_runs_in_the_loop(strategy: str, tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        res = run_campaign(store, spec(strategy=strategy, budget_samples=60, target_spearman=0.9999),
                           SyntheticProfiler(), FAM)
        assert res.n_train == 60 and len(res.iterations) == 3


@pytest.mark.parametrize(("kw", "needle"), [
    ({"target_spearman": 0}, "target_spearman=0"), ({"target_spearman": 1.2}, "target_spearman=1.2"),
    ({"budget_hours": -1}, "budget_hours=-1"), ({"budget_samples": 0}, "budget_samples=0"),
    ({"strategy": "nope"}, "unknown strategy 'nope'"), ({"model": "nope"}, "model 'nope'"),
    ({"name": "bad name!"}, "campaign name 'bad name!'"), ({"target_acc10": 2}, "target_acc10=2"),
    ({"batch_size": 0}, "batch_size=0"), ({"seed": -1}, "seed=-1"),
])
def test_bad_specs(kw, needle: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        spec(**kw).validate()


@pytest.mark.slow
def test_iterations_learn(tmp_path: Path) -> None:
    with Store(tmp_path / "l.sqlite") as store:
        run_campaign(store, spec(target_spearman=0.9999, budget_samples=120), SyntheticProfiler(), FAM)
        rho = np.array([r["spearman"] for r in store.iterations("c1")])
        assert rho[-1] > rho[0]
        n = [r["n_train"] for r in store.iterations("c1")]
        assert n == sorted(n) and n[0] == 20
