"""Verification without a wasted validation set, the random share of every batch, the one bill, the judge hook
and the exported predictor fitted on everything measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.bill import campaign_bill
from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import MIN_VERIFY_ROWS, make_model, run_campaign
from acquisition.store import Store
from acquisition.strategies import get_strategy
from profiler.families import get_family
from surrogates import load_bundle
from surrogates.models import CommitteeRegressor
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK

FAM = get_family("mbconv")


def spec(name: str = "v1", **kw) -> CampaignSpec:
    base = {"name": name, "family": "mbconv", "model": QUICK, "target_spearman": 0.97, "budget_samples": 200,
            "batch_size": 20, "initial_size": 20, "validation_size": 60, "pool_size": 500, "folds": 3,
            "pipeline": "off"}  # one fit per batch, in order: what these tests count (pipelining: test_pipeline)
    base.update(kw)
    return CampaignSpec(**base)


@pytest.mark.slow
def test_cv_campaign_profiles_no_validation_set_and_verifies_on_its_random_share(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        res = run_campaign(store, spec(verification="cv", stop_rule="streak"), SyntheticProfiler(), FAM,
                           bundle_path=str(tmp_path / "v1.bundle"))
        assert res.state == "met" and res.n_validation == 0 and res.validation_hours == 0
        members = store.members("v1")
        assert {m["role"] for m in members} == {"train"}
        drawn = [m["drawn"] for m in members]
        assert drawn[:20] == ["initial"] * 20
        # every later batch of 20: half drawn at random, half by the strategy
        for i in range(20, len(drawn), 20):
            assert sorted(drawn[i:i + 20]) == ["random"] * 10 + ["strategy"] * 10
        its = store.iterations("v1")
        assert [it["n_verify"] for it in its] == [10 * i for i in range(len(its))]
        assert all(not it["met"] for it in its if it["n_verify"] < MIN_VERIFY_ROWS)
        assert its[-1]["met"] and its[-2]["met"] and its[-1]["verification"] == "cv"
        # the one bill: every member's cost, and each iteration's record of it
        bill = sum(m["cost_s"] for m in members)
        assert res.profiling_hours == pytest.approx(bill / 3600)
        assert its[-1]["profiling_s"] == pytest.approx(bill)
    pred = load_bundle(tmp_path / "v1.bundle")
    assert isinstance(pred.model, CommitteeRegressor) and pred.manifest["n_train"] == res.n_train
    d = pred.predict_dist([m["config"] for m in members[:5]])
    assert d.epistemic is not None and np.all(d.epistemic <= d.std)


def test_random_strategy_draws_the_whole_batch_at_random(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        run_campaign(store, spec(strategy="random", budget_samples=80, target_spearman=0.9999, verification="cv"),
                     SyntheticProfiler(), FAM)
        drawn = [m["drawn"] for m in store.members("v1")]
        assert drawn == ["initial"] * 20 + ["random"] * 60
        assert [it["n_verify"] for it in store.iterations("v1")] == [0, 20, 40, 60]


def test_holdout_export_is_refitted_on_training_and_validation_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as store:
        res = run_campaign(store, spec(verification="holdout", strategy="random", budget_samples=60,
                                       target_spearman=0.9999), SyntheticProfiler(), FAM,
                           bundle_path=str(tmp_path / "h.bundle"))
        assert res.n_validation == 60 and res.n_train == 60
        bill = campaign_bill(store, "v1")
        assert bill.role_hours("validation") == pytest.approx(res.validation_hours) and res.validation_hours > 0
        assert res.profiling_hours == pytest.approx(bill.hours)
        assert store.iterations("v1")[0]["n_verify"] == 60
    assert load_bundle(tmp_path / "h.bundle").manifest["n_train"] == 120


def test_judge_scores_every_iteration_without_touching_the_bill(tmp_path: Path) -> None:
    seen_sizes = []

    def judge(model, seen: set[str]) -> dict[str, float]:
        seen_sizes.append(len(seen))
        return {"spearman": 0.5, "acc10": 0.25, "mape": 12.0}

    with Store(tmp_path / "j.sqlite") as store:
        res = run_campaign(store, spec(budget_samples=60, target_spearman=0.9999), SyntheticProfiler(), FAM,
                           judge=judge)
        its = store.iterations("v1")
        assert seen_sizes == [20, 40, 60] and len(its) == 3
        assert all(it["test_spearman"] == 0.5 and it["test_acc10"] == 0.25 and it["test_mape"] == 12 for it in its)
        assert res.profiling_hours == pytest.approx(campaign_bill(store, "v1").hours)


def test_models_are_wrapped_in_a_committee_when_needed() -> None:
    assert isinstance(make_model(spec(model="gbt")), CommitteeRegressor)  # cv verification
    assert isinstance(make_model(spec(model="gbt", verification="prequential")), CommitteeRegressor)
    holdout = spec(model="gbt", verification="holdout")
    assert not isinstance(make_model(holdout, get_strategy("random")), CommitteeRegressor)
    assert isinstance(make_model(holdout, get_strategy("uncertainty")), CommitteeRegressor)  # gbt has no epistemic
    assert not isinstance(make_model(spec(verification="holdout", model="rf"), get_strategy("uncertainty")),
                          CommitteeRegressor)  # rf has its own
    with pytest.raises(ValueError, match="model='auto' is a choice among"):
        make_model(spec(model="auto"))  # the engine names each candidate


@pytest.mark.parametrize(("kw", "needle"), [
    ({"verification": "bogus"}, "verification='bogus'"), ({"folds": 1}, "folds=1"),
    ({"stop_rule": "bogus"}, "stop rule 'bogus' is unknown: available stop rules are bound, streak"),
    ({"random_share": 1.5}, "random_share=1.5"), ({"random_share": True}, "random_share=True"),
])
def test_bad_verification_settings(kw, needle: str) -> None:
    with pytest.raises(CampaignError, match=needle):
        spec(**kw).validate()


def test_a_campaign_stored_before_schema_3_resumes_the_holdout_way() -> None:
    old = spec().as_dict()
    for k in ("verification", "folds", "random_share", "stop_rule"):
        old.pop(k)
    s = CampaignSpec.from_dict(old)
    assert s.verification == "holdout" and s.random_share == 0.0 and s.stop_rule == "streak"


@pytest.mark.slow
def test_auto_model_keeps_the_candidate_with_the_best_out_of_fold_rho(tmp_path: Path, monkeypatch) -> None:
    from acquisition.engine import auto_models
    from surrogates.metrics import spearman

    monkeypatch.setattr("acquisition.loop.models.AUTO_RECHOOSE", 1.0)  # a choice at every fit, the last on every row
    with Store(tmp_path / "m.sqlite") as store:
        run_campaign(store, spec(model="auto", strategy="random", budget_samples=80, target_spearman=0.9999),
                     SyntheticProfiler(), FAM, bundle_path=str(tmp_path / "m.bundle"))
        rows = store.members("v1", "train", status="ok")
    pred = load_bundle(tmp_path / "m.bundle")
    chosen = pred.manifest["model"]["name"]
    X = pred.encoder.transform([r["config"] for r in rows])
    names = auto_models(len(rows))
    assert chosen in names and pred.manifest["extra"]["model_setting"] == "auto"
    y = np.array([r["min_ms"] for r in rows])
    # judged on the rows no model chose: the initial design and the random share
    unbiased = np.array([r["drawn"] in ("random", "initial") for r in rows])
    rho = {}
    for name in names:
        m = make_model(spec(model="auto"), name=name).fit(X, y)
        rho[name] = spearman(y[unbiased], np.exp(m.oof_log_[unbiased]))
    assert rho[chosen] == max(rho.values())


def test_auto_models_drop_the_gp_where_conditioning_on_every_row_would_be_dear() -> None:
    from acquisition.engine import AUTO_GP_ROWS, auto_models

    assert auto_models(AUTO_GP_ROWS) == ("gbt", "linear", "gp")
    assert auto_models(AUTO_GP_ROWS + 1) == ("gbt", "linear")


@pytest.mark.slow
def test_auto_model_chooses_out_of_fold_beside_a_holdout_set(tmp_path: Path) -> None:
    """With a holdout set the choice is still made on the committees' out-of-fold predictions (of the initial
    design and the random share); the holdout set only judges it."""
    s = spec(model="auto", verification="holdout", strategy="random", budget_samples=60, target_spearman=0.9999)
    assert isinstance(make_model(s.validate(), name="linear"), CommitteeRegressor)
    with Store(tmp_path / "h.sqlite") as store:
        run_campaign(store, s, SyntheticProfiler(), FAM, bundle_path=str(tmp_path / "h.bundle"))
        kept = {it["model"] for it in store.iterations("v1")}
    assert kept and kept <= {"gbt", "linear", "gp"}


def test_cv_needs_a_random_share_and_a_batch_of_one_is_drawn_at_random(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="random_share=0 is not allowed with verification='cv'"):
        spec(random_share=0.0).validate()
    with pytest.raises(CampaignError, match="random_share=0 is not allowed with verification='prequential'"):
        spec(random_share=0.0, verification="prequential").validate()
    spec(random_share=0.0, strategy="random").validate()
    with Store(tmp_path / "one.sqlite") as store:
        run_campaign(store, spec(batch_size=1, budget_samples=23, target_spearman=0.9999), SyntheticProfiler(), FAM)
        assert [m["drawn"] for m in store.members("v1")][20:] == ["random"] * 3


@pytest.mark.slow
def test_prequential_scores_each_random_row_with_the_model_fitted_before_it_was_measured(tmp_path: Path) -> None:
    from acquisition.engine import CampaignLoop
    from acquisition.verification import WINDOW, Evidence, estimate, prequential_evidence

    prof = SyntheticProfiler()
    with Store(tmp_path / "p.sqlite") as store:
        s = spec(name="p1", budget_samples=100, target_spearman=0.9999, verification="prequential")
        store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
        store.create_campaign(s.name, s.family, prof.platform_id, s.validate().as_dict(), protocol=prof.protocol.id)
        loop = CampaignLoop(store, s, prof, FAM)
        loop.measure(prof, loop.next_asks())  # the initial design: nothing predicted it
        batch = loop.next_asks()  # iteration 0's batch, asked with its model's predictions, not measured yet
        assert batch and all(a.pred_log is not None and a.pred_n == 20 for a in batch)
        stored = {r["key"]: r for r in store.asks("p1", "0")}
        assert all(stored[a.key]["pred_log"] == pytest.approx(a.pred_log) for a in batch)
        assert not store.members("p1", "train")[20:], "predicted before anything of the batch was measured"
        expected = loop.model.predict_dist(loop.encode([{"key": a.key, "config": a.config} for a in batch])).mean
        assert np.allclose([a.pred_log for a in batch], expected)
        while asks := loop.next_asks():
            loop.measure(prof, asks)
        its = store.iterations("p1")
        rows = store.members("p1", "train", status="ok")
        labels = {r["key"]: r["min_ms"] for r in rows}
        ev = prequential_evidence(store.asks("p1"), labels)
        assert len(ev) == sum(r["drawn"] == "random" for r in rows) and isinstance(ev, Evidence)
        last = estimate(ev, its[-1]["n_train"])
        assert its[-1]["verification"] == "prequential" and its[-1]["n_verify"] == last["n_verify"]
        assert its[-1]["spearman"] == pytest.approx(last["spearman"])
        # only rows predicted by a model with at least WINDOW x the current rows count
        assert last["n_verify"] == sum(1 for n in ev.pred_n if n >= WINDOW * its[-1]["n_train"])
        assert all(it["cv_spearman"] is None or -1 <= it["cv_spearman"] <= 1 for it in its)
