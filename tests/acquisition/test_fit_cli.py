"""``fit`` and ``predict``: a model fitted on stored measurements, exported, loaded and used from the CLI; bad
input gets one line and exit code 2 and changes nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from acquisition.fitting import FitError, fit_and_export, load_dataset, split_indices
from acquisition.store import Store
from profiler.protocol import Timing
from profiler.worker import Measurement
from surrogates import load_bundle
from tests.acquisition.test_cli import assert_one_line_error, run_cli
from tests.surrogates.synthetic import block_dataset

PLATFORM = "feedfacecafe"


def _measurement(fam, cfg, ms: float, platform: str = PLATFORM, status: str = "ok") -> Measurement:
    t = Timing(min_ms=ms, median_ms=ms * 1.05, p10_ms=ms * 1.01, p90_ms=ms * 1.1, mean_ms=ms * 1.06, n=30,
               timed_s=ms * 30e-3, warmup_n=2, warmup_s=0.01, stop="stable", spread=1.01)
    return Measurement(family=fam.name, key=fam.key(cfg), config=cfg, protocol="adaptive-v1", platform=platform,
                       status=status, cost_s=ms * 40e-3 + 0.05, timing=t, build_s=0.01)


def make_db(path: Path, n: int = 120, family: str = "mbconv", platforms: tuple[str, ...] = (PLATFORM,)) -> Path:
    fam, cfgs, y = block_dataset(family, n, seed=5)
    with Store(path) as store:
        for p in platforms:
            store.ensure_platform(p, {"kind": "cpu", "cpu_model": "fake", "threads": 1}, "cpu")
            for cfg, ms in zip(cfgs, y, strict=True):
                store.record(_measurement(fam, cfg, float(ms), platform=p))
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_db(tmp_path_factory.mktemp("fit") / "acq.sqlite")


@pytest.fixture(scope="module")
def bundle(db: Path) -> Path:
    out = db.parent / "m.bundle"
    code, stdout, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--model", "gbt", "--out", str(out))
    assert code == 0, err
    assert "held-out test (18)" in stdout and "rho=" in stdout and str(out) in stdout
    return out


def test_split_is_seeded_and_disjoint() -> None:
    tr, va, te = split_indices(100, seed=3)
    assert (len(tr), len(va), len(te)) == (70, 15, 15)
    assert len(set(tr) | set(va) | set(te)) == 100
    assert all(np.array_equal(a, b) for a, b in zip(split_indices(100, seed=3), (tr, va, te), strict=True))
    with pytest.raises(FitError, match="too few"):
        split_indices(5)


def test_load_dataset(db: Path) -> None:
    with Store(db, readonly=True) as store:
        ds = load_dataset(store, "mbconv")
    assert len(ds) == 120 and ds.platform == PLATFORM and ds.protocol == "adaptive-v1"
    assert np.all(ds.latency_ms > 0) and ds.fingerprint["cpu_model"] == "fake"


def test_several_platforms_need_a_choice(tmp_path: Path) -> None:
    path = make_db(tmp_path / "two.sqlite", n=30, platforms=("aaaa", "bbbb"))
    with Store(path, readonly=True) as store:
        with pytest.raises(FitError, match="2 platforms: choose one with --platform"):
            load_dataset(store, "mbconv")
        assert load_dataset(store, "mbconv", platform="bbbb").platform == "bbbb"


def test_fit_prints_test_metrics_and_charges_the_ledger(db: Path, bundle: Path) -> None:
    m = json.loads(json.dumps(load_bundle(bundle).manifest))
    assert m["model"]["name"] == "gbt" and m["n_train"] == 102 and m["metrics"]["n_test"] == 18
    assert m["metrics"]["spearman"] > 0.9
    with Store(db, readonly=True) as store:
        acts = {r[0] for r in store.db.execute("select activity from ledger")}
    assert {"fit", "export"} <= acts


@pytest.mark.slow
def test_fit_auto_selects_a_model(tmp_path: Path) -> None:
    path = make_db(tmp_path / "a.sqlite", n=60)
    with Store(path) as store:
        res = fit_and_export(store, "mbconv", out=str(tmp_path / "a.bundle"), model="auto", select_budget_s=3)
    assert res.comparison is not None and res.model_name == res.comparison.best
    assert load_bundle(tmp_path / "a.bundle").manifest["model"]["name"] == res.model_name


def test_predict_one_config(bundle: Path) -> None:
    cfg = {"input_hw": 28, "cin": 32, "cout": 64, "expansion": 6, "kernel": 5, "stride": 2, "se": True,
           "act": "hswish"}
    code, out, err = run_cli("predict", "--bundle", str(bundle), "--config", json.dumps(cfg))
    assert code == 0, err
    row = json.loads(out)
    assert row["p10_ms"] < row["pred_ms"] < row["p90_ms"] and row["log_std"] > 0
    direct = load_bundle(bundle).predict([cfg])[0]
    assert row["pred_ms"] == pytest.approx(direct)


def test_predict_csv_round_trip(db: Path, bundle: Path, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    code, _, err = run_cli("measurements", "--db", str(db), "--csv", str(src))
    assert code == 0, err
    code, _, err = run_cli("predict", "--bundle", str(bundle), "--csv", str(src), "--out", str(dst))
    assert code == 0, err
    with open(src) as a, open(dst) as b:
        rin, rout = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert len(rout) == len(rin) == 120
    # the export's measured p10_ms / p90_ms are kept; the predicted interval gets the pred_ prefix
    assert set(rout[0]) == set(rin[0]) | {"pred_ms", "pred_p10_ms", "pred_p90_ms", "log_std"}
    assert [r["p10_ms"] for r in rout] == [r["p10_ms"] for r in rin]
    pred = np.array([float(r["pred_ms"]) for r in rout])
    meas = np.array([float(r["min_ms"]) for r in rin])
    assert np.median(np.abs(pred / meas - 1)) < 0.15


@pytest.mark.parametrize(("case", "needles"), [
    ("unknown-model", ["--model 'xgb'"]),
    ("unknown-family", ["'nofamily'"]),
    ("no-data", ["'resv1'", "profile some first"]),
    ("bad-platform", ["'zzzz'"]),
    ("out-is-db", ["is the database itself"]),
    ("out-missing-dir", ["cannot be written"]),
])
def test_fit_bad_input(case: str, needles: list[str], db: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.bundle")
    argv = {"unknown-model": ["--family", "mbconv", "--model", "xgb", "--out", out],
            "unknown-family": ["--family", "nofamily", "--out", out],
            "no-data": ["--family", "resv1", "--out", out],
            "bad-platform": ["--family", "mbconv", "--platform", "zzzz", "--out", out],
            "out-is-db": ["--family", "mbconv", "--out", str(db)],
            "out-missing-dir": ["--family", "mbconv", "--out", str(tmp_path / "no" / "x.bundle")]}[case]
    before = db.read_bytes()
    code, _, err = run_cli("fit", "--db", str(db), *argv)
    assert code == 2
    assert_one_line_error(err, *needles)
    assert not Path(out).exists()
    if case != "no-data":  # a refused fit writes nothing (no-data fails after opening, before any write)
        assert db.read_bytes() == before


@pytest.mark.parametrize(("argv", "needles"), [
    (["--config", "{not json"], ["not valid JSON"]),
    (["--config", '{"input_hw": 56}'], ["missing field 'cin'"]),
    (["--config", '{"input_hw": 56, "cin": 24, "cout": 24, "expansion": 6, "kernel": 4, "stride": 1, "se": false,'
                  ' "act": "relu"}'], ["kernel=4"]),
    ([], ["exactly one of --config"]),
    (["--csv", "in.csv"], ["--csv needs --out"]),
])
def test_predict_bad_input(argv: list[str], needles: list[str], bundle: Path) -> None:
    code, out, err = run_cli("predict", "--bundle", str(bundle), *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *needles)


def test_predict_bad_csv_row_names_the_line(bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("input_hw,cin,cout,expansion,kernel,stride,se,act\n56,24,24,6,3,1,False,relu\n"
                   "56,24,24,6,3,1,maybe,relu\n")
    dst = tmp_path / "out.csv"
    code, _, err = run_cli("predict", "--bundle", str(bundle), "--csv", str(src), "--out", str(dst))
    assert code == 2 and not dst.exists()
    assert_one_line_error(err, "line 3", "se='maybe'")


def test_predict_refuses_a_tampered_bundle(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.bundle"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    code, _, err = run_cli("predict", "--bundle", str(bad), "--config", "{}")
    assert code == 2
    assert_one_line_error(err, "bad.bundle")


def test_fit_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "none.sqlite"
    code, _, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--out", str(tmp_path / "m.bundle"))
    assert code == 2 and not db.exists()
    assert_one_line_error(err, "none.sqlite", "does not exist")


def test_fit_jobs_zero_is_refused(db: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--jobs", "0", "--out",
                           str(tmp_path / "m.bundle"))
    assert code == 2
    assert_one_line_error(err, "'0'")
