"""``python -m nas``: bad input gets one line and exit 2; a tiny real pipeline on this CPU (blocks, fit,
evaluate, search) works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main
from tests.acquisition.test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[2]


def run_nas(*argv: str) -> tuple[int, str, str]:
    return run_cli(*argv, entry=main)


def test_bad_input_one_line_exit_2(bundle_dir: str, tmp_path: Path) -> None:
    mb = os.path.join(bundle_dir, "mbconv.bundle")
    cases = [
        (["search", "--bundle", str(tmp_path / "none.bundle")], ["--bundle", "none.bundle", "does not exist"]),
        (["search", "--bundle", mb, "--space", "nope"], ["unknown network space 'nope'"]),
        (["search", "--bundle", mb, "--space", "stacked-resv1"], ["family 'resv1', which has no bundle"]),
        (["search", "--bundle", mb, "--trials", "0"], ["--trials", "'0' must be a positive integer"]),
        (["search", "--bundle", mb, "--budget-ms", "-1"], ["--budget-ms", "'-1' must be a positive number"]),
        (["search", "--bundle", mb, "--calibration", str(tmp_path / "c.json")], ["--calibration", "does not exist"]),
        (["evaluate", "--bundle", mb, "--networks", "5", "--calibrate", "4"], ["--calibrate 4 leaves fewer than 3"]),
        (["blocks", "--space", "stacked-nosuch"], ["unknown network space 'stacked-nosuch'"]),
    ]
    (tmp_path / "file").write_text("x")
    cases.append((["search", "--bundle", mb, "--out", str(tmp_path / "file")], ["--out", "is not a directory"]))
    for argv, needles in cases:
        code, _, err = run_nas(*argv)
        assert code == 2, (argv, err)
        assert_one_line_error(err, *needles)


@pytest.mark.slow
def test_bundles_of_another_platform_are_refused(bundle_dir: str, tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    code, _, err = run_nas("evaluate", "--bundle", os.path.join(bundle_dir, "resv1.bundle"), "--networks", "5",
                           "--calibrate", "0", "--db", str(db), "--no-progress")
    assert code == 2
    assert_one_line_error(err, "fitted on platform 5y57e71c0000", "this device is")
    if db.exists():  # nothing was measured
        from acquisition.store import Store

        with Store(db, readonly=True) as store:
            assert list(store.measurements()) == []


@pytest.mark.slow
def test_tiny_real_pipeline(tmp_path: Path) -> None:
    """Blocks of 3 networks profiled on this CPU, a bundle fitted on them, 7 networks measured and predicted
    (2 calibrate), then a 2-trial surrogate search with one epoch of training. Three networks hold 12 distinct
    blocks (four held 20, 2-3 s more): enough for a bundle, which is all the later steps need."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    db, bundle, out = tmp_path / "t.sqlite", tmp_path / "r.bundle", tmp_path / "ev"

    def sh(*argv: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=280, check=False)
        assert r.returncode == 0, r.stderr
        return r

    sh("nas", "blocks", "--space", "stacked-resv1", "--networks", "3", "--db", str(db), "--no-progress")
    sh("acquisition", "fit", "--db", str(db), "--family", "resv1", "--model", "gbt", "--out", str(bundle))
    r = sh("nas", "evaluate", "--bundle", str(bundle), "--networks", "7", "--calibrate", "2", "--db", str(db),
           "--out", str(out), "--json", "--no-progress")
    d = json.loads(r.stdout)
    assert d["n_networks"] == 5 and d["n_calibration"] == 2
    for k in ("spearman", "pearson", "mape", "acc10"):
        assert isinstance(d[k], float)
    assert (out / "evaluation.png").stat().st_size > 1000 and (out / "calibration.json").exists()
    r = sh("nas", "search", "--bundle", str(bundle), "--trials", "2", "--epochs", "1", "--calibration",
           str(out / "calibration.json"), "--storage", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "s"),
           "--json", "--no-progress")
    s = json.loads(r.stdout)
    assert s["trials"] == 2 and 0 <= s["best"]["accuracy"] <= 1 and s["best"]["latency_ms"] > 0
    assert (tmp_path / "s" / "pareto.png").exists()
