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
    base = {"strategies": ["random", "representative"], "seeds": 3, "target_spearman": 0.95, "budget_samples": 60,
            "batch_size": 10, "initial_size": 10, "validation_size": 40, "model": "gbt", "db": str(db),
            "acc10_at": 40}
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


def test_study_records_summary_and_report(table: Path, tmp_path: Path) -> None:
    res = small_study(table, tmp_path / "s.sqlite").run(n_jobs=1, progress=False)
    assert len(res.runs) == 6 and {r["state"] for r in res.runs} <= {"met", "budget"}
    recs = res.records
    assert {(r["strategy"], r["seed"]) for r in recs} == {(s, i) for s in ("random", "representative")
                                                          for i in range(3)}
    for curve in (res.curves("random")[0], res.curves("representative")[1]):
        n = [r["n_train"] for r in curve]
        h = [r["train_hours"] for r in curve]
        assert n == sorted(n) and n[-1] == 60 and all(np.diff(h) > 0)  # run to the budget, hours accumulate
    summ = res.summary()
    rnd = summ["strategies"]["random"]
    assert rnd["runs"] == 3 and "hours_ratio" not in rnd and "hours_ratio" in summ["strategies"]["representative"]
    tt = res.to_target("random")
    for seed, (n, h) in tt.items():
        curve = res.curves("random")[seed]
        hit = next(r for r in curve if r["met_streak"] >= 2) if math.isfinite(n) else None
        assert hit is None or (hit["n_train"] == n and hit["train_hours"] == h)
    assert rnd["samples_to_target"]["median"] == float(np.median([v[0] for v in tt.values()]))
    paths = write_report(res, str(tmp_path / "report"))
    assert Path(paths["curves"]).stat().st_size > 20_000
    data = json.loads(Path(paths["json"]).read_text())
    assert set(data["strategies"]) == {"random", "representative"}
    assert "| representative |" in Path(paths["markdown"]).read_text()
    # the campaigns of a study are ordinary campaigns: the engine's report reads them
    from acquisition.cli import main as acquisition_main

    seed_db = str(tmp_path / "s.sqlite") + ".campaigns/seed-0.sqlite"
    assert acquisition_main(["report", "--db", seed_db, "--campaign", "representative-s0", "--format", "json",
                             "--out", str(tmp_path / "camp")]) == 0


def test_hours_are_the_cost_of_the_training_measurements(table: Path, tmp_path: Path) -> None:
    from acquisition.store import Store

    res = small_study(table, tmp_path / "h.sqlite", strategies=["random"], seeds=[4]).run(n_jobs=1, progress=False)
    with Store(str(tmp_path / "h.sqlite") + ".campaigns/seed-4.sqlite", readonly=True) as store:
        train = store.members("random-s4", "train")
    assert res.records[-1]["train_hours"] == pytest.approx(sum(m["cost_s"] for m in train) / 3600)


@pytest.mark.slow
def test_parallel_seeds_match_serial_and_a_study_resumes(table: Path, tmp_path: Path) -> None:
    serial = small_study(table, tmp_path / "a.sqlite").run(n_jobs=1, progress=False)
    par = small_study(table, tmp_path / "b.sqlite").run(n_jobs=2, progress=False)

    def key(rs):
        return sorted((r["strategy"], r["seed"], r["n_train"], round(r["spearman"], 9)) for r in rs)

    assert key(serial.records) == key(par.records)
    # more seeds: only the new ones run; the finished ones are read back
    more = small_study(table, tmp_path / "a.sqlite", seeds=[0, 1, 2, 3]).run(n_jobs=1, progress=False)
    assert len(more.runs) == 8 and key([r for r in more.records if r["seed"] < 3]) == key(serial.records)
    with pytest.raises(StudyError, match="exists in this database with other settings"):
        small_study(table, tmp_path / "a.sqlite", target_spearman=0.9).run(n_jobs=1, progress=False)


def test_bad_study_arguments(table: Path, tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="unknown strategy 'nope'"):
        small_study(table, tmp_path / "x.sqlite", strategies=["random", "nope"]).validate()
    with pytest.raises(StudyError, match="names a strategy twice"):
        small_study(table, tmp_path / "x.sqlite", strategies=["random", "random"]).validate()
    with pytest.raises(StudyError, match=r"target_spearman=1\.5"):
        small_study(table, tmp_path / "x.sqlite", target_spearman=1.5).validate()
    with pytest.raises(StudyError, match="does not exist"):
        load_study(str(tmp_path / "none.sqlite"))
    assert not (tmp_path / "x.sqlite").exists()


def test_accuracy_at_n_samples_is_unknown_for_campaigns_that_ended_before_n() -> None:
    from studies.study import StudyResult

    def rec(seed: int, n: int, acc: float) -> dict:
        return {"strategy": "random", "seed": seed, "iteration": n, "n_train": n, "train_hours": n / 100,
                "spearman": 0.99, "mape": 5.0, "acc10": acc, "met": 1, "met_streak": 2}

    recs = [rec(0, 40, 0.5), rec(0, 60, 0.6), rec(0, 80, 0.7),  # ran past 60 samples
            rec(1, 40, 0.4), rec(1, 50, 0.45)]  # stopped at its target after 50 samples
    res = StudyResult("s", {"strategies": ["random"], "target_spearman": 0.9, "acc10_at": 60, "source": {},
                            "model": "gbt"}, [{"seed": 0}, {"seed": 1}], recs)
    at = res.at_samples("random", 60, "acc10")
    assert at[0] == 0.6 and math.isnan(at[1])
    assert res.summary()["strategies"]["random"]["acc10_at_60"]["median"] == 0.6
    assert res.summary(acc10_at=45)["strategies"]["random"]["acc10_at_45"]["median"] == pytest.approx(0.45)


def test_cli_compare_and_report(table: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    rc = main(["compare", "--csv", str(table), "--params", "hw,cin,k,act", "--latency-col", "ms", "--strategies",
               "random,diverse", "--seeds", "2", "--budget-samples", "40", "--batch-size", "10",
               "--validation-size", "40", "--target-spearman", "0.95", "--acc10-at", "30", "--out", str(out),
               "--jobs", "1", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seeds"] == 2 and set(data["strategies"]) == {"random", "diverse"}
    assert (out / "learning_curves.png").exists() and (out / "records.csv").exists()
    assert main(["report", "--db", str(out / "study.sqlite"), "--out", str(tmp_path / "r2")]) == 0
    assert "| diverse |" in capsys.readouterr().out
    assert main(["report", "--db", str(out / "study.sqlite"), "--out", str(tmp_path / "r3"), "--acc10-at", "20"]) == 0
    assert "±10 % at 20" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--params", "hw,cin", "--latency-col", "nope"], "column 'nope' is not in the table"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--where", "act=gelu"], "matches no rows"),
    (["--params", "hw,cin,k,act", "--latency-col", "ms", "--strategies", "random,nope"], "unknown strategy 'nope'"),
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
