"""A predictable command line: the package layout (one module per group), one set of defaults whatever flags
are given, ``--help`` that shows every default and lists the registered names, ``predict --csv`` that never
overwrites an input column, ``profile`` under the one-writer lock, error messages that say when a list is cut,
and a ``predict`` that does not import torch."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import profiler.worker
from acquisition._lock import RunLock
from acquisition.campaign import CampaignSpec
from acquisition.cli import GROUPS, build_parser, listed, run_defaults, run_spec
from acquisition.cli.models import PREDICT_COLUMNS, prediction_columns
from acquisition.strategies import list_strategies
from profiler.families import list_families
from surrogates import list_models, load_bundle
from tests.acquisition.test_cli import PROFILE, assert_one_line_error, counts, make_small_db, run_cli
from tests.acquisition.test_fit_cli import make_db

ROOT = Path(__file__).resolve().parents[2]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


# -- layout -------------------------------------------------------------------------------------------------------
def test_every_group_module_registers_its_subcommands() -> None:
    import importlib

    assert isinstance(GROUPS, tuple) and all(isinstance(g, str) for g in GROUPS)
    seen: list[str] = []
    for group in GROUPS:
        module = importlib.import_module(f"acquisition.cli.{group}")
        sub = argparse.ArgumentParser().add_subparsers()
        module.register(sub)
        seen += list(sub.choices)
    assert sorted(seen) == sorted(subcommands(build_parser()))
    assert {"profile", "remeasure", "status", "measurements", "fit", "predict", "run", "report"} <= set(seen)


def test_old_import_names_still_work() -> None:
    from acquisition.cli import (  # noqa: F401 - what nas, studies and older code import
        CliError,
        _non_negative_int,
        _Parser,
        _positive_float,
        _positive_int,
        _print_sources,
        add_device_args,
        device_from_args,
        run_command,
    )
    from acquisition.cli._common import DEFAULT_DB, load_plugins, non_negative_int, positive_float, positive_int

    assert DEFAULT_DB == "acquisition.sqlite" and _positive_int is positive_int
    assert _non_negative_int("0") == non_negative_int("0") == 0 and positive_float("2.5") == 2.5
    with pytest.raises(CliError, match="'no_such_module_xyz'"):
        load_plugins(["no_such_module_xyz"])


def test_python_m_acquisition_still_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "acquisition", "status", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "--db" in proc.stdout, proc.stderr


# -- one set of defaults ------------------------------------------------------------------------------------------
def _spec(*argv: str) -> CampaignSpec:
    args = build_parser().parse_args(["run", *argv])
    return run_spec(args, None)


@pytest.mark.parametrize("flags", [["--batch-size", "10"], ["--verification", "holdout"], ["--budget-hours", "1"],
                                   ["--target-acc10", "0.8"], ["--family", "resv1"], ["--seed", "3"],
                                   ["--model", "gbt"], ["--budget-samples", "100"]])
def test_giving_a_flag_changes_no_other_default(flags: list[str]) -> None:
    bare, given = _spec(), _spec(*flags)
    assert (bare.validation_size, bare.budget_samples, bare.budget_hours) == (200, 400, 0.12)
    changed = {f.name for f in fields(CampaignSpec) if getattr(bare, f.name) != getattr(given, f.name)}
    assert changed == {flags[0].lstrip("-").replace("-", "_")}


def test_run_help_shows_the_defaults_it_uses() -> None:
    d = run_defaults()
    parser = subcommands(build_parser())["run"]
    formatter = parser._get_formatter()
    helps = {a.dest: " ".join(formatter._expand_help(a).split()) for a in parser._actions if a.help}
    for field in ("target_spearman", "budget_hours", "budget_samples", "validation_size", "batch_size",
                  "initial_size", "pool_size", "folds", "random_share", "confirm", "strategy", "model", "family",
                  "fidelity", "verification", "seed"):
        m = re.search(r"\(default ([^);:,]+)", helps[field])
        assert m is not None, f"--{field}: no default in {helps[field]!r}"
        assert m.group(1) == str(d[field]), (field, m.group(1), d[field])


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    from nas.cli import build_parser as nas_parser
    from studies.cli import build_parser as studies_parser

    out = []
    for prog, parser in (("acquisition", build_parser()), ("nas", nas_parser()), ("studies", studies_parser())):
        out.append((prog, parser))
        out += [(f"{prog} {name}", p) for name, p in subcommands(parser).items()]
    return out


@pytest.mark.parametrize(("prog", "parser"), _parsers(), ids=[p for p, _ in _parsers()])
def test_help_shows_every_default(prog: str, parser: argparse.ArgumentParser) -> None:
    formatter = parser._get_formatter()
    for action in parser._actions:
        default = action.default
        if (not action.option_strings or action.help is argparse.SUPPRESS or default is None or default is False
                or default == [] or isinstance(action, argparse._CountAction | argparse._HelpAction)):
            continue
        assert action.help, f"{prog} {action.option_strings}: no help, so --help cannot show its default"
        text = formatter._expand_help(action)
        shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        assert "default" in text.lower() or f"({shown}" in text, f"{prog} {action.option_strings}: {text!r}"


def test_help_lists_strategies_models_and_families() -> None:
    for argv in (["--help"], ["run", "--help"]):
        code, out, _ = run_cli(*argv)
        assert code == 0
        for name in [*list_strategies(), *list_models(), *list_families()]:
            assert name in out, (argv, name)
    code, out, _ = run_cli("fit", "--help")
    assert all(m in out for m in list_models()) and all(f in out for f in list_families())


def test_descriptions_print_percent_signs_once() -> None:
    code, out, _ = run_cli("remeasure", "--help")
    assert code == 0 and "+-10 %" in out and "%%" not in out


# -- predict --csv never overwrites an input column --------------------------------------------------------------
def test_prediction_column_names() -> None:
    assert prediction_columns(["a", "b"]) == PREDICT_COLUMNS
    assert prediction_columns(["p10_ms", "p90_ms"]) == ["pred_ms", "pred_p10_ms", "pred_p90_ms", "log_std"]
    assert prediction_columns(["pred_ms", "log_std", "pred_log_std"]) == ["pred_ms_2", "p10_ms", "p90_ms",
                                                                         "pred_log_std_2"]


@pytest.mark.slow
def test_predict_csv_keeps_a_measurements_export_intact(tmp_path: Path) -> None:
    db = make_db(tmp_path / "acq.sqlite", n=60)
    bundle, src, dst = tmp_path / "m.bundle", tmp_path / "in.csv", tmp_path / "out.csv"
    code, _, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--model", "linear", "--out", str(bundle))
    assert code == 0, err
    code, _, err = run_cli("measurements", "--db", str(db), "--csv", str(src))
    assert code == 0, err
    code, _, err = run_cli("predict", "--bundle", str(bundle), "--csv", str(src), "--out", str(dst))
    assert code == 0, err
    assert "pred_p10_ms" in err and "pred_p90_ms" in err  # says where the predictions went
    with open(src) as a, open(dst) as b:
        rin, rout = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert len(rin) == len(rout) == 60
    for before, after in zip(rin, rout, strict=True):
        assert {k: after[k] for k in before} == before  # every input cell as it was
        assert float(after["pred_p10_ms"]) < float(after["pred_ms"]) < float(after["pred_p90_ms"])
    code, out, err = run_cli("predict", "--bundle", str(bundle), "--config", json.dumps(
        {k: rin[0][k] for k in ("input_hw", "cin", "cout", "expansion", "kernel", "stride", "se", "act")}))
    assert code == 0, err
    assert set(json.loads(out)) >= set(PREDICT_COLUMNS)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["linear", "rf"])
def test_predict_imports_neither_torch_nor_scikit_learn_for_a_lean_bundle(model: str, tmp_path: Path) -> None:
    """A bundle of a built-in family predicts without torch (a cold start of seconds); one with a lean form
    (surrogates.lean) without scikit-learn and skops too, and to the same numbers as the model loaded in full."""
    db = make_db(tmp_path / "acq.sqlite", n=40)
    bundle = tmp_path / "m.bundle"
    code, _, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--model", model, "--out", str(bundle))
    assert code == 0, err
    cfg = {"input_hw": 28, "cin": 32, "cout": 64, "expansion": 6, "kernel": 5, "stride": 2, "se": True,
           "act": "hswish"}
    code = ("import sys; from acquisition.cli import main; "
            f"rc = main(['predict', '--bundle', {str(bundle)!r}, '--config', {json.dumps(cfg)!r}]); "
            "print('torch' in sys.modules, 'sklearn' in sys.modules, 'skops' in sys.modules, rc, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    lean = model == "linear"
    assert proc.stderr.strip().splitlines()[-1] == f"False {not lean} {not lean} 0", proc.stderr
    full = load_bundle(bundle)
    want = full.predict([full.family.validate(full.family.space.coerce(cfg))])[0]
    assert json.loads(proc.stdout)["pred_ms"] == pytest.approx(want, rel=1e-9)
    # many rows: scikit-learn's compiled trees outrun the lean form's numpy walk, so the model is loaded in full
    from acquisition.cli.models import LEAN_ROWS, _for_rows
    from surrogates.lean import LeanModel

    pred = load_bundle(bundle, lean=True)
    assert isinstance(pred.model, LeanModel) == lean and _for_rows(pred, str(bundle), LEAN_ROWS) is pred
    assert not isinstance(_for_rows(pred, str(bundle), LEAN_ROWS + 1).model, LeanModel)


# -- profile under the one-writer lock ---------------------------------------------------------------------------
class _NoProfiling:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("a refused writer must not profile")


@pytest.mark.parametrize("command", ["profile", "remeasure"])
def test_a_second_writer_is_refused(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiler.worker, "Profiler", _NoProfiling)
    db = make_small_db(tmp_path / "acq.sqlite")
    before = counts(db)
    argv = ([*PROFILE, "--n", "1"] if command == "profile"
            else ["remeasure", "--family", "mbconv", "--n", "1", "--device", "cpu", "--no-progress"])
    with RunLock(str(db)):
        code, out, err = run_cli(*argv, "--db", str(db))
    assert code == 2 and out == ""
    assert_one_line_error(err, str(db), f"pid {os.getpid()}")
    assert counts(db) == before


# -- lists in error messages --------------------------------------------------------------------------------------
def test_listed_says_when_it_cuts() -> None:
    assert listed([]) == "none" and listed(["a", "b"]) == "a, b"
    text = listed([f"n{i}" for i in range(25)], 10)
    assert text.startswith("n0, n1") and "n10," not in text and "15 more" in text and "25 in all" in text


def test_a_long_list_in_an_error_says_how_many(tmp_path: Path) -> None:
    from acquisition.store import Store

    db = make_small_db(tmp_path / "acq.sqlite")
    with Store(db) as store:  # 13 platforms
        for i in range(12):
            store.ensure_platform(f"{i:012x}", {"kind": "cpu", "cpu_model": f"fake{i}"}, "cpu")
    code, _, err = run_cli("measurements", "--db", str(db), "--platform", "ffffffffffff", "--csv", "-")
    assert code == 2
    assert_one_line_error(err, "ffffffffffff", "3 more", "13 in all")
