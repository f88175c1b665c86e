"""Budgeted studies: records and summaries, resume, parallel seeds, the statistics, reports and the CLI."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from studies import ReplaySource, Study, StudyError, load_study, write_report
from studies._stats import median_ci
from studies.cli import main
from tests.quick_models import QUICK


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("t") / "blocks.csv"
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hw", "cin", "k", "act", "ms"])
        for hw, cin, k, act in itertools.product((7, 14, 28, 56), range(16, 129, 16), (3, 5, 7), ("relu", "swish")):
            ms = 2e-5 * hw * hw * cin * (k * k + 4) * (1.4 if act == "swish" else 1.0) * rng.lognormal(0, 0.03)
            w.writerow([hw, cin, k, act, f"{ms:.6f}"])
    return path  # 192 rows


def source(table: Path) -> ReplaySource:
    return ReplaySource(csv=str(table), params=["hw", "cin", "k", "act"], latency_col="ms")


def small_study(table: Path, db: Path, **kw) -> Study:
    base = {"arms": ["random", "default"], "seeds": 3, "target_spearman": 0.95, "budget_samples": 60,
            "batch_size": 10, "initial_size": 10, "validation_size": 40, "model": QUICK, "db": str(db),
            "acc10_at": 40, "plugins": ["tests.quick_models"]}  # parallel seeds import it too
    base.update(kw)
    return Study("s", source(table), **base)


def test_median_ci_is_distribution_free_and_handles_censoring() -> None:
    assert median_ci(range(1, 11)) == (5.5, 2.0, 9.0)
    med, lo, hi = median_ci([1, 2, 3])
    assert (med, lo, hi) == (2.0, 1.0, 3.0)  # too few values for 95 %: the whole range
    assert median_ci([1, 2, math.inf, math.inf, math.inf])[0] == math.inf
    assert median_ci([1, 2, 3, math.inf])[0] == 2.5
    assert all(math.isnan(v) for v in median_ci([]))
    # coverage: the interval holds the true median of a skewed distribution at least 95 % of the time
    rng = np.random.default_rng(1)
    hits = [(lambda c: c[1] <= math.log(2) <= c[2])(median_ci(rng.exponential(1.0, 12))) for _ in range(400)]
    assert np.mean(hits) >= 0.94


@pytest.mark.slow
def test_study_records_summary_and_report(table: Path, tmp_path: Path) -> None:
    res = small_study(table, tmp_path / "s.sqlite").run(n_jobs=1, progress=False)
    assert len(res.runs) == 6 and {r["state"] for r in res.runs} <= {"met", "budget", "exhausted"}
    recs = res.records
    assert {(r["arm"], r["seed"]) for r in recs} == {(s, i) for s in ("random", "default") for i in range(3)}
    for curve in (res.curves("random")[0], res.curves("default")[1]):
        n = [r["n_train"] for r in curve]
        h = [r["hours"] for r in curve]
        assert n == sorted(n) and n[-1] == 60 and all(np.diff(h) > 0)  # run to the budget, hours accumulate
        # every iteration was judged on rows the campaign never saw
        assert all(r["test_spearman"] is not None and 0 < r["test_spearman"] <= 1 for r in curve)
    # the naive baseline's bill starts with its validation set; the default spends nothing on verification
    assert res.curves("random")[0][0]["hours"] > res.curves("default")[0][0]["hours"]
    assert res.curves("random")[0][0]["n_verify"] == 40 and res.curves("default")[0][0]["n_verify"] == 0
    summ = res.summary()
    rnd, dft = summ["arms"]["random"], summ["arms"]["default"]
    assert rnd["runs"] == 3 and "hours_ratio" not in rnd and "hours_ratio" in dft
    assert dft["hours_ratio"]["interval"] == "range"  # 3 seeds: the range, not a 95 % interval
    tt, stops = res.to_target("random"), res.stops("random")
    for seed, (n, h) in tt.items():
        curve = res.curves("random")[seed]
        hit = next((r for r in curve if r["met_streak"] >= 2), None)
        if math.isfinite(n):  # a verified stop: where the rule fired, and the never-seen rho met the target there
            assert hit["n_train"] == n and hit["hours"] == h and hit["test_spearman"] >= 0.95
        else:
            assert hit is None or hit["test_spearman"] < 0.95
        assert stops[seed]["verified"] == math.isfinite(n)
    assert rnd["met"] + rnd["false_stops"] + rnd["no_stop"] == 3
    assert rnd["samples_to_target"]["median"] == float(np.median([v[0] for v in tt.values()]))
    paths = write_report(res, str(tmp_path / "report"))
    assert Path(paths["curves"]).stat().st_size > 20_000
    data = json.loads(Path(paths["json"]).read_text())
    assert set(data["arms"]) == {"random", "default"} and "hours_ratio" in data["arms"]["default"]
    assert "| default |" in Path(paths["markdown"]).read_text()
    assert not list((tmp_path / "report").glob("*.tmp*"))  # written whole, renamed into place
    # the campaigns of a study are ordinary campaigns: the engine's report reads them
    from acquisition.cli import main as acquisition_main

    seed_db = str(tmp_path / "s.sqlite") + ".campaigns/seed-0.sqlite"
    assert acquisition_main(["report", "--db", seed_db, "--campaign", "default-s0", "--format", "json",
                             "--out", str(tmp_path / "camp")]) == 0


def test_hours_are_the_campaigns_whole_bill(table: Path, tmp_path: Path) -> None:
    from acquisition.store import Store

    res = small_study(table, tmp_path / "h.sqlite", arms=["random"], seeds=[4]).run(n_jobs=1, progress=False)
    with Store(str(tmp_path / "h.sqlite") + ".campaigns/seed-4.sqlite", readonly=True) as store:
        members = store.members("random-s4")
    assert {m["role"] for m in members} == {"train", "validation"}
    assert res.records[-1]["hours"] == pytest.approx(sum(m["cost_s"] for m in members) / 3600)
    assert res.runs[0]["validation_hours"] == pytest.approx(
        sum(m["cost_s"] for m in members if m["role"] == "validation") / 3600)


def _rec(arm: str, seed: int, n: int, *, streak: int, test: float, hours: float | None = None) -> dict:
    return {"arm": arm, "seed": seed, "iteration": n, "n_train": n, "hours": n / 100 if hours is None else hours,
            "spearman": 0.99, "mape": 5.0, "acc10": 0.5, "met": int(streak > 0), "met_streak": streak,
            "test_spearman": test, "test_acc10": 0.5, "test_mape": 5.0}


def _result(recs: list[dict], arms=("random", "default")):
    from studies.study import StudyResult

    seeds = sorted({r["seed"] for r in recs})
    return StudyResult("s", {"arms": list(arms), "target_spearman": 0.9, "acc10_at": 60, "source": {},
                             "model": "gbt", "confirm": 2}, [{"seed": s} for s in seeds], recs)


def test_a_false_stop_is_censored_and_a_censored_baseline_makes_the_ratio_a_bound() -> None:
    recs = [
        # seed 0: random stops at 40 but the never-seen rho is below target there: a false stop
        _rec("random", 0, 20, streak=1, test=0.85), _rec("random", 0, 40, streak=2, test=0.88),
        _rec("random", 0, 60, streak=3, test=0.92), _rec("random", 0, 80, streak=4, test=0.93),
        # default stops at 40, verified
        _rec("default", 0, 20, streak=1, test=0.91), _rec("default", 0, 40, streak=2, test=0.92),
        # seed 1: both verified; default at half the hours
        _rec("random", 1, 20, streak=1, test=0.95), _rec("random", 1, 40, streak=2, test=0.95),
        _rec("default", 1, 20, streak=2, test=0.95, hours=0.2),
    ]
    res = _result(recs)
    st = res.stops("random")
    assert st[0]["n"] == 40 and not st[0]["verified"] and st[0]["oracle_n"] == 80
    assert math.isinf(res.to_target("random")[0][0]) and res.to_target("default")[0] == (40.0, 0.4)
    ratio = res.summary()["arms"]["default"]["hours_ratio"]
    # seed 0: the baseline never got a verified stop within its 0.8 h: the ratio is at most 0.4 / 0.8
    assert ratio["bound"] == "upper" and ratio["pairs"] == 2
    assert sorted([ratio["lo"], ratio["hi"]]) == [pytest.approx(0.5), pytest.approx(0.5)]
    summ = res.summary()["arms"]["random"]
    assert summ["false_stops"] == 1 and summ["met"] == 1
    from studies.report import fmt_ci

    assert fmt_ci(ratio, 2).startswith("≤ 0.50")


def test_ratios_and_the_wilcoxon_test_say_whether_a_difference_is_real() -> None:
    recs = []
    for seed in range(10):
        recs += [_rec("random", seed, 40, streak=1, test=0.95), _rec("random", seed, 60, streak=2, test=0.95)]
        recs += [_rec("default", seed, 20, streak=1, test=0.95), _rec("default", seed, 30, streak=2, test=0.95)]
    summ = _result(recs).summary()["arms"]["default"]
    assert summ["hours_ratio"]["median"] == pytest.approx(0.5) and summ["hours_ratio"]["bound"] is None
    assert summ["hours_ratio"]["interval"] == "95 %" and summ["hours_ratio"]["wilcoxon_p"] < 0.01


def test_strategy_only_ratio_of_the_default_arm() -> None:
    from acquisition.campaign import DEFAULT_STRATEGY

    recs = []
    for seed in range(3):
        recs += [_rec("random", seed, 40, streak=2, test=0.95), _rec("default", seed, 20, streak=2, test=0.95),
                 _rec(DEFAULT_STRATEGY, seed, 30, streak=2, test=0.95)]
    summ = _result(recs, arms=("random", "default", DEFAULT_STRATEGY)).summary()["arms"]
    assert summ["default"]["strategy_only"]["hours_ratio"]["median"] == pytest.approx(0.75)


@pytest.mark.slow
def test_parallel_seeds_match_serial_and_a_study_resumes(table: Path, tmp_path: Path) -> None:
    # 30 samples a campaign (three fits each) instead of 60: what is compared is that each seed's records
    # are the same however the seeds ran, not how far they got
    def study(db: str, **kw) -> Study:
        return small_study(table, tmp_path / db, budget_samples=30, **kw)

    serial = study("a.sqlite", seeds=2).run(n_jobs=1, progress=False)
    par = study("b.sqlite", seeds=2).run(n_jobs=2, progress=False)

    def key(rs):
        return sorted((r["arm"], r["seed"], r["n_train"], round(r["test_spearman"], 9)) for r in rs)

    assert key(serial.records) == key(par.records)
    # more seeds: only the new ones run; the finished ones are read back
    more = study("a.sqlite", seeds=[0, 1, 2]).run(n_jobs=1, progress=False)
    assert len(more.runs) == 6 and key([r for r in more.records if r["seed"] < 2]) == key(serial.records)
    with pytest.raises(StudyError, match="exists in this database with other settings"):
        study("a.sqlite", target_spearman=0.9).run(n_jobs=1, progress=False)


def test_bad_study_arguments(table: Path, tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="unknown strategy 'nope'"):
        small_study(table, tmp_path / "x.sqlite", arms=["random", "nope"]).validate()
    with pytest.raises(StudyError, match="names an arm twice"):
        small_study(table, tmp_path / "x.sqlite", arms=["random", "random"]).validate()
    with pytest.raises(StudyError, match="test_size=3"):
        small_study(table, tmp_path / "x.sqlite", test_size=3).validate()
    with pytest.raises(StudyError, match=r"target_spearman=1\.5"):
        small_study(table, tmp_path / "x.sqlite", target_spearman=1.5).validate()
    with pytest.raises(StudyError, match="does not exist"):
        load_study(str(tmp_path / "none.sqlite"))
    assert not (tmp_path / "x.sqlite").exists()


def test_accuracy_at_n_samples_is_unknown_for_campaigns_that_ended_before_n() -> None:
    recs = [_rec("random", 0, 40, streak=0, test=0.9), _rec("random", 0, 60, streak=0, test=0.9),
            _rec("random", 0, 80, streak=0, test=0.9),  # ran past 60 samples
            _rec("random", 1, 40, streak=0, test=0.9), _rec("random", 1, 50, streak=0, test=0.9)]  # ended at 50
    for r, acc in zip(recs, (0.5, 0.6, 0.7, 0.4, 0.45), strict=True):
        r["test_acc10"] = acc
    res = _result(recs, arms=("random",))
    at = res.at_samples("random", 60, "test_acc10")
    assert at[0] == 0.6 and math.isnan(at[1])
    assert res.summary()["arms"]["random"]["acc10_at_60"]["median"] == 0.6
    assert res.summary(acc10_at=45)["arms"]["random"]["acc10_at_45"]["median"] == pytest.approx(0.45)


@pytest.mark.slow
def test_cli_compare_and_report(table: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    rc = main(["compare", "--csv", str(table), "--params", "hw,cin,k,act", "--latency-col", "ms", "--arms",
               "random,diverse", "--seeds", "2", "--budget-samples", "40", "--batch-size", "10",
               "--validation-size", "40", "--target-spearman", "0.95", "--acc10-at", "30", "--out", str(out),
               "--jobs", "1", "--json", "--model", QUICK, "--plugin", "tests.quick_models"])  # the CLI, not the model
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seeds"] == 2 and set(data["arms"]) == {"random", "diverse"}
    assert (out / "learning_curves.png").exists() and (out / "records.csv").exists()
    assert main(["report", "--db", str(out / "study.sqlite"), "--out", str(tmp_path / "r2")]) == 0
    assert "| diverse |" in capsys.readouterr().out
    assert main(["report", "--db", str(out / "study.sqlite"), "--out", str(tmp_path / "r3"), "--acc10-at", "20"]) == 0
    assert "±10 % at 20" in capsys.readouterr().out
    # an older study database is refused with a one-line reason, not misread
    import sqlite3

    con = sqlite3.connect(out / "study.sqlite")
    con.execute("pragma user_version = 1")
    con.commit()
    con.close()
    assert main(["compare", "--csv", str(table), "--params", "hw,cin,k,act", "--latency-col", "ms", "--seeds", "1",
                 "--out", str(out)]) == 2
    assert "study schema 1" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--params", "hw,cin", "--latency-col", "nope"], "column 'nope' is not in the table"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--where", "act=gelu"], "matches no rows"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--arms", "random,nope"], "unknown strategy 'nope'"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--random-share", "2"], "must be in [0, 1]"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--cost-from-db", "/nonexistent/x.sqlite"],
     "--cost-from-db '/nonexistent/x.sqlite' does not exist"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--model", "nope"], "model 'nope' is unknown"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--target-spearman", "2"], "must be in (0, 1]"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--seeds", "x"], "is not a seed count"),
    (["--latency-col", "ms"], "--csv needs --params"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(table: Path, tmp_path: Path, capsys, args: list[str],
                                                             message: str) -> None:
    out = tmp_path / "o"
    try:
        rc = main(["compare", "--csv", str(table), *args, "--out", str(out)])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_cli_without_a_source(capsys) -> None:
    assert main(["compare"]) == 2
    assert "name a source" in capsys.readouterr().err


@pytest.mark.slow
def test_a_live_source_is_judged_on_a_test_set_profiled_once_outside_every_bill(tmp_path: Path) -> None:
    from acquisition.bill import campaign_bill
    from acquisition.engine import run_campaign
    from acquisition.store import Store
    from profiler.families import get_family
    from studies.study import _judge
    from tests.acquisition.synthetic_profiler import SyntheticProfiler

    fam, prof = get_family("mbconv"), SyntheticProfiler()
    study = Study("live", None, arms=["default"], seeds=[0], test_size=40,  # type: ignore[arg-type]
                  target_spearman=0.9999, budget_samples=40, batch_size=10, initial_size=10)
    with Store(tmp_path / "live.sqlite") as store:
        judge = _judge(store, prof, fam, study, seed=0)
        assert prof.calls == 40 and len(judge.y) == 40
        assert store.campaigns() == [] and store.profiling_seconds() == 0  # charged as test_profile: no bill
        spec = study.campaign_spec("default", 0, fam.name)
        run_campaign(store, spec, prof, fam, judge=judge)
        its = store.iterations(spec.name)
        assert all(0 < it["test_spearman"] <= 1 for it in its)
        assert campaign_bill(store, spec.name).hours == pytest.approx(
            sum(m["cost_s"] for m in store.members(spec.name)) / 3600)
        again = _judge(store, prof, fam, study, seed=0)  # a resumed seed reuses its test set
        assert prof.calls == 40 + 40 and np.array_equal(again.keys, judge.keys)


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory) -> Path:
    """The same 192 configurations on two devices: ``slow`` is 3x slower on compute and pays more per kernel
    size than ``fast`` (related, not proportional)."""
    path = tmp_path_factory.mktemp("t") / "two.csv"
    rng = np.random.default_rng(1)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["device", "hw", "cin", "k", "act", "ms"])
        for hw, cin, k, act in itertools.product((7, 14, 28, 56), range(16, 129, 16), (3, 5, 7), ("relu", "swish")):
            base = 2e-5 * hw * hw * cin * (k * k + 4) * (1.4 if act == "swish" else 1.0)
            w.writerow(["fast", hw, cin, k, act, f"{base * rng.lognormal(0, 0.03):.6f}"])
            w.writerow(["slow", hw, cin, k, act, f"{3 * base ** 0.9 * (1 + 0.05 * k) * rng.lognormal(0, 0.03):.6f}"])
    return path


@pytest.mark.slow
def test_a_transfer_study_runs_each_arm_twice_and_compares_the_twins(two_devices: Path, tmp_path: Path) -> None:
    src = ReplaySource(csv=str(two_devices), params=["hw", "cin", "k", "act"], latency_col="ms",
                       where=["device=slow"])
    study = Study("t", src, arms=["default"], seeds=2, target_spearman=0.97, budget_samples=60, batch_size=10,
                  initial_size=10, validation_size=40, db=str(tmp_path / "t.sqlite"), acc10_at=40,
                  transfer_where=["device=fast"])
    res = study.run(n_jobs=1, progress=False)
    s = res.summary()
    assert list(s["arms"]) == ["default", "default+transfer"]
    assert s["arms"]["default+transfer"]["ratio_against"] == "default"
    assert "hours_ratio" in s["arms"]["default+transfer"] and "hours_ratio" not in s["arms"]["default"]
    assert s["transfer"]["where"] == ["device=fast"]
    # the twin's first model stands on the source and ranks the never-seen rows better than the plain one
    first = {arm: [c[0]["test_spearman"] for c in res.curves(arm).values()] for arm in res.arms}
    assert min(first["default+transfer"]) > max(first["default"])
    paths = write_report(res, str(tmp_path / "rep"))
    assert "vs `default`" in Path(paths["markdown"]).read_text()


def test_transfer_needs_a_table_and_twins_are_not_named(two_devices: Path, table: Path, tmp_path: Path) -> None:
    src = ReplaySource(csv=str(two_devices), params=["hw", "cin", "k", "act"], latency_col="ms",
                       where=["device=slow"])
    with pytest.raises(StudyError, match="added by the study"):
        Study("t", src, arms=["default+transfer"], db=str(tmp_path / "x.sqlite")).validate()
    with pytest.raises(StudyError, match=r"transfer_db '/nonexistent\.sqlite' does not exist"):
        Study("t", src, transfer_db="/nonexistent.sqlite", db=str(tmp_path / "x.sqlite")).validate()
    with pytest.raises(StudyError, match=r"transfer_db: .* not a latency-acquisition database"):
        Study("t", src, transfer_db=str(two_devices), db=str(tmp_path / "x.sqlite")).validate()
    with pytest.raises(StudyError, match="transfer_where device=gpu: the filter device=gpu matches no rows"):
        Study("t", src, transfer_where=["device=gpu"], db=str(tmp_path / "x.sqlite")).validate()
    assert not (tmp_path / "x.sqlite").exists()


def test_cli_bad_transfer_where_is_one_line_exit_2(two_devices: Path, tmp_path: Path, capsys) -> None:
    rc = main(["compare", "--csv", str(two_devices), "--params", "hw,cin,k,act", "--latency-col", "ms", "--where",
               "device=slow", "--transfer-where", "device=gpu", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "device=gpu" in err
    assert not (tmp_path / "o" / "study.sqlite").exists()


@pytest.mark.slow
def test_a_stop_is_where_the_campaigns_own_rule_fired_and_a_schema_2_database_is_upgraded(table: Path,
                                                                                          tmp_path: Path) -> None:
    """The default arm stops by its bound (once); the study reads the recorded `fired`, not a streak of two.
    The study's overrides reach the default arm's campaign; a study database of schema 2 gains the column."""
    import sqlite3

    db = tmp_path / "f.sqlite"
    study = small_study(table, db, arms=["default"], seeds=2, stop_rule="bound", random_share=1.0)
    assert study.campaign_spec("default", 0, "x").random_share == 1.0
    assert study.campaign_spec("default", 0, "x").stop_rule == "bound"
    assert study.campaign_spec("random", 0, "x").stop_rule == "streak"  # the naive way keeps its rule
    res = study.run(n_jobs=1, progress=False)
    for seed, st in res.stops("default").items():
        curve = res.curves("default")[seed]
        hit = next((r for r in curve if r["fired"]), None)
        # a pipelined stop also pays what the device had measured or started when it was decided
        assert (hit is None and st["n"] is None) or hit["n_train"] + hit["inflight"] == st["n"]
    con = sqlite3.connect(db)
    con.execute("create table r2 as select * from study_records")
    con.execute("drop table study_records")
    con.execute("create table study_records as select study, arm, seed, iteration, n_train, hours, spearman, "
                "spearman_lo, mape, acc10, coverage80, n_verify, met, met_streak, test_spearman, test_acc10, "
                "test_mape, fit_s, query_s from r2")
    con.execute("drop table r2")
    con.execute("pragma user_version = 2")
    con.commit()
    con.close()
    old = load_study(str(db))  # read-only: the streak decides where nothing recorded `fired`
    assert all(r.get("fired") is None for r in old.records)
    small_study(table, db, arms=["default"], seeds=2, stop_rule="bound", random_share=1.0).run(n_jobs=1,
                                                                                             progress=False)
    con = sqlite3.connect(db)
    assert con.execute("pragma user_version").fetchone()[0] == 4
    assert {"fired", "inflight"} <= {r[1] for r in con.execute("pragma table_info(study_records)")}
    con.close()


def test_a_default_model_arm_is_the_default_configuration_with_that_model(table: Path, tmp_path: Path) -> None:
    study = small_study(table, tmp_path / "m.sqlite", arms=["default", "default:linear", "default:auto"])
    d, lin, auto = (study.campaign_spec(a, 0, "f") for a in study.arms)
    assert (lin.model, auto.model) == ("linear", "auto") and lin.name == "default_linear-s0"
    assert {**lin.as_dict(), "model": d.model, "name": d.name} == d.as_dict()
    with pytest.raises(StudyError, match="model 'nope' is unknown"):
        small_study(table, tmp_path / "x.sqlite", arms=["default:nope"]).validate()


def test_a_pipelined_arm_is_compared_with_its_sequential_twin(table: Path, tmp_path: Path) -> None:
    # one database per arm: the pipelined arm measures (and waits for) what the sequential one measured too
    study = small_study(table, tmp_path / "p.sqlite", arms=["default@sequential", "default"], seeds=1,
                        model="linear", plugins=[], shared_store=False)
    assert study.campaign_spec("default@sequential", 0, "x").pipeline == "off"
    assert study.campaign_spec("default", 0, "x").pipeline == "auto"
    assert study.campaign_spec("random", 0, "x").pipeline == "off"  # the naive way, step by step
    assert study.campaign_spec("default@sequential", 0, "x").name == "default_sequential-s0"
    res = study.run(n_jobs=1, progress=False)
    s = res.summary()["arms"]
    assert s["default"]["ratio_against"] == "default@sequential" and s["default"]["samples_ratio"]["pairs"] >= 0
    runs = {(r["arm"], r["seed"]): r for r in res.runs}
    assert all(r["device_wall_s"] > r["device_idle_s"] >= 0 for r in runs.values())
    pipelined = [r for r in res.records if r["arm"] == "default"]
    assert any(r["pending"] for r in pipelined) and not any(r["pending"] for r in res.records
                                                             if r["arm"] == "default@sequential")
    with pytest.raises(StudyError, match="after '@' expected sequential or pipelined"):
        small_study(table, tmp_path / "q.sqlite", arms=["default@later"]).validate()
