"""Many-device tables as sources: ``--transfer-by`` (each other device of the table a source of its own) and the
leave-one-device-out study (``python -m studies transfer``): its rows, its report files, the best source alone
and one-line errors for bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from studies.cli import main
from studies.sources import ReplaySource
from studies.study import Study, StudyError, study_sources, transfer_by_values
from studies.transfer_study import TransferStudyError, _unseen_rho, fell, run_transfer_study, transfer_markdown
from tests.tables import has_row, md_rows

DEVICES = {"fast": 1.0, "slow": 3.0, "odd": None}  # odd: latencies unrelated to the others


def write_zoo(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hw", "c", "k", "device", "ms"])
        for dev, scale in DEVICES.items():
            for hw in range(7, 64, 4):
                for c in range(8, 136, 16):
                    for k in (1, 3, 5):
                        ms = (rng.uniform(0.1, 10) if scale is None
                              else scale * 1e-4 * hw * hw * c * k ** 1.5 * rng.lognormal(0, 0.02))
                        w.writerow([hw, c, k, dev, f"{ms:.6f}"])
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    return write_zoo(tmp_path_factory.mktemp("zoo") / "zoo.csv")


def source(zoo: Path, target: str) -> ReplaySource:
    return ReplaySource(csv=str(zoo), params=["hw", "c", "k"], latency_col="ms", where=[f"device={target}"])


def test_transfer_by_makes_each_other_device_a_source(zoo: Path, tmp_path: Path) -> None:
    assert transfer_by_values(str(zoo), "device", ["device=slow"]) == ["fast", "odd"]
    study = Study("t", source(zoo, "slow"), arms=["default"], seeds=[0], transfer_by="device",
                  db=str(tmp_path / "s.sqlite")).validate()
    assert study.transfers and study.all_arms == ["default", "default+transfer"]
    oracle, family = study.source.open()
    srcs = study_sources(study, oracle, family)
    assert [s.name for s in srcs] == ["table:device=fast", "table:device=odd"]
    assert all(len(s.configs) == len(oracle.table) for s in srcs)


@pytest.mark.parametrize(("kw", "needle"), [
    ({"transfer_by": "board"}, "the source must be one value of it (e.g. --where board=VALUE)"),
])
def test_transfer_by_needs_the_source_to_be_one_value(zoo: Path, tmp_path: Path, kw, needle: str) -> None:
    with pytest.raises(StudyError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Study("t", source(zoo, "slow"), arms=["default"], seeds=[0], db=str(tmp_path / "s.sqlite"), **kw).validate()


@pytest.mark.slow
def test_leave_one_device_out(zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "loo"
    rows = run_transfer_study(str(zoo), params=["hw", "c", "k"], latency_col="ms", device_col="device",
                              targets=["slow"], seeds=[0, 1], budget_samples=25, batch_size=5, initial_size=5,
                              target_spearman=0.9, at=(5, 10, 20), out=str(out), n_jobs=1, progress=False)
    (row,) = rows
    assert row["target"] == "slow" and row["seeds"] == 2 and set(row["rho_at"]) == {"5", "10", "20"}
    cell = row["rho_at"]["10"]
    # the best source alone is the related device ("fast", a scaled copy): it ranks the target almost perfectly
    assert cell["best_source"] > 0.95 and cell["with"] > cell["without"] - 0.05
    assert all(0 <= row[k] <= 2 for k in ("false_stops_with", "false_stops_without", "transfer_falls",
                                          "control_falls"))
    md = transfer_markdown(rows, 0.9)
    assert md_rows(md)[0][:2] == ["target", "ρ at 5: without / with / best source"] and has_row(md, "slow")
    # resumed: the same command reads the finished seeds back
    again = run_transfer_study(str(zoo), params=["hw", "c", "k"], latency_col="ms", device_col="device",
                               targets=["slow"], seeds=[0, 1], budget_samples=25, batch_size=5, initial_size=5,
                               target_spearman=0.9, at=(5, 10, 20), out=str(out), n_jobs=1, progress=False)
    assert json.dumps(again, default=str) == json.dumps(rows, default=str)


@pytest.mark.slow
def test_the_cli_writes_the_report_and_refuses_bad_input(zoo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    code = main(["transfer", "--csv", str(zoo), "--params", "hw,c,k", "--latency-col", "ms", "--device-col",
                 "device", "--targets", "fast", "--seeds", "1", "--budget-samples", "15", "--at", "5,10",
                 "--target-spearman", "0.9", "--jobs", "1", "--out", str(out), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["target"] == "fast" and all((out / f"transfer.{x}").is_file() for x in ("md", "json", "png"))
    assert not math.isnan(rows[0]["rho_at"]["10"]["with"])
    for argv, needle in [
        (["--device-col", "board"], "column 'board' is not in the table"),
        (["--device-col", "device", "--targets", "tpu"], "target device 'tpu' is not in column 'device'"),
        (["--device-col", "device", "--where", "device=fast"], "must not filter on the device column"),
        (["--device-col", "device", "--at", "0"], "--at '0' is not allowed"),
    ]:
        code = main(["transfer", "--csv", str(zoo), "--params", "hw,c,k", "--latency-col", "ms",
                     "--out", str(tmp_path / "bad"), *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and "\n" not in err, err
    one = tmp_path / "one.csv"  # a table of one device has nothing to learn from
    one.write_text("\n".join(ln for ln in zoo.read_text().splitlines() if ",fast," in ln or ln.startswith("hw,")))
    with pytest.raises(TransferStudyError, match="holds 1 device"):
        run_transfer_study(str(one), params=["hw", "c", "k"], latency_col="ms", device_col="device",
                           out=str(tmp_path / "o"), seeds=[0])


def test_the_fall_check_and_its_control() -> None:
    assert fell([0.90, 0.95, 0.946, 0.96]) is False and fell([0.90, 0.95, 0.94]) is True
    # one fixed predictor, scored on the rows not measured yet: measuring the rows it ranks best lowers its rho
    # with no model changing, which is what the control column counts
    truth = {f"k{i}": float(i) for i in range(40)}
    pred = {k: v + (0.0 if i < 20 else (-1) ** i * 3.0) for i, (k, v) in enumerate(truth.items())}
    seen = [f"k{i}" for i in range(20)]
    rhos = [_unseen_rho(truth, pred, seen[:n]) for n in (0, 10, 20)]
    assert fell(rhos) and rhos[0] > rhos[2]
