"""``studies compare --replay-db``: a store's measurements replayed (min latency, real cost), with the store's
other platforms as transfer sources; its bad inputs are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acquisition.profiling import profile_configs
from acquisition.store import Store
from profiler.families import get_family
from studies.cli import main
from tests.acquisition.synthetic_profiler import SyntheticProfiler


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    """A target store (one platform, 160 rows) and a sources store (another platform: another law)."""
    d = tmp_path_factory.mktemp("replaydb")
    fam = get_family("mbconv")
    with Store(d / "target.sqlite") as st:
        profile_configs(st, SyntheticProfiler(platform="tgt000000000", law={"gmacs_per_s": 5.0, "layer_us": 40.0}), fam,
                        fam.space.sample(160, seed=1), progress=False)
    with Store(d / "sources.sqlite") as st:
        profile_configs(st, SyntheticProfiler(platform="src000000000"), fam, fam.space.sample(80, seed=2),
                        progress=False)
    return d / "target.sqlite", d / "sources.sqlite"


@pytest.mark.slow
def test_replay_db_study_runs_with_transfer_from_another_store(stores: tuple[Path, Path], tmp_path: Path,
                                                               capsys) -> None:
    target, sources = stores
    rc = main(["compare", "--replay-db", str(target), "--family", "mbconv", "--transfer-db", str(sources),
               "--arms", "default", "--seeds", "1", "--budget-samples", "40", "--batch-size", "20",
               "--target-spearman", "0.9", "--jobs", "1", "--json", "--out", str(tmp_path / "out")])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["arms"]) == {"default", "default+transfer"}
    assert all(a["runs"] == 1 for a in summary["arms"].values())
    assert summary["source"]["store"] == str(target) and summary["source"]["family"] == "mbconv"
    assert summary["transfer"]["db"] == str(sources)


@pytest.mark.parametrize("argv, message", [
    (["--replay-db", "{missing}", "--family", "mbconv"], "--replay-db '{missing}' does not exist"),
    (["--replay-db", "{target}"], "--replay-db needs --family"),
    (["--replay-db", "{target}", "--family", "resv1"], "holds no ok measurement of family 'resv1'"),
    (["--family", "mbconv", "--platform", "abc"], "--platform only applies to --replay-db"),
])
def test_replay_db_bad_inputs_are_one_line_errors(stores: tuple[Path, Path], tmp_path: Path, capsys,
                                                  argv: list[str], message: str) -> None:
    target, _ = stores
    names = {"missing": str(tmp_path / "none.sqlite"), "target": str(target)}
    argv = [a.format(**names) for a in argv]
    rc = main(["compare", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and message.format(**names) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
