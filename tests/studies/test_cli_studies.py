"""``python -m studies``: what ``--seeds`` accepts and how it refuses, ``--help`` with every default, and a summary
that names every target asked for and says why a cell is empty."""

from __future__ import annotations

import argparse

import pytest

from studies.cli import _seeds, build_parser, main
from studies.report import fmt_ci, summary_markdown
from studies.study import StudyResult
from tests.tables import md_row


@pytest.mark.parametrize(("text", "seeds"), [("3", [0, 1, 2]), ("0,3,5", [0, 3, 5]), ("2-4", [2, 3, 4]),
                                             ("0-0", [0]), ("0,", [0])])
def test_seeds_forms(text: str, seeds: list[int]) -> None:
    assert _seeds(text) == seeds


@pytest.mark.parametrize(("text", "needles"), [
    ("0", ["'0' is a seed count", "no study", "0-0 for seed 0 alone"]),
    ("-2", ["'-2' is a seed count", "no study"]),
    ("4-2", ["empty range", "0-4"]),
    ("1,1", ["names a seed twice"]),
    ("x", ["is not a seed count", "(0,3,5)"]),
])
def test_bad_seeds_say_what_is_wrong_and_what_is_expected(text: str, needles: list[str], capsys) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as e:
        _seeds(text)
    for needle in needles:
        assert needle in str(e.value)
    with pytest.raises(SystemExit) as ex:
        main(["compare", "--csv", "t.csv", "--params", "a", "--seeds", text])
    err = capsys.readouterr().err.strip()
    assert ex.value.code == 2 and "\n" not in err and "--seeds" in err and needles[0] in err


def test_help_shows_defaults_and_lists_strategies() -> None:
    from acquisition.strategies import list_strategies

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    text = " ".join(sub.choices["compare"].format_help().split())
    assert "(default: 1500)" in text and "(default: study-report)" in text and "(default 10)" in text
    assert all(name in text for name in list_strategies())


def _rec(arm: str, seed: int, n: int, *, streak: int, test: float, acc: float) -> dict:
    return {"arm": arm, "seed": seed, "iteration": n, "n_train": n, "hours": n / 100, "spearman": 0.99, "mape": 5.0,
            "acc10": 0.5, "met": int(streak > 0), "met_streak": streak, "test_spearman": test, "test_acc10": acc,
            "test_mape": 5.0}


def test_summary_names_every_target_and_says_why_cells_are_empty() -> None:
    recs = [  # random: never stops, never good enough; default: stops at 40 with rho met but not +-10 %
        _rec("random", 0, 20, streak=0, test=0.80, acc=0.3), _rec("random", 0, 40, streak=0, test=0.85, acc=0.3),
        _rec("default", 0, 20, streak=1, test=0.95, acc=0.5), _rec("default", 0, 40, streak=2, test=0.96, acc=0.5),
    ]
    res = StudyResult("s", {"arms": ["random", "default"], "target_spearman": 0.9, "target_acc10": 0.8,
                            "budget_samples": 40, "acc10_at": 60, "source": {}, "model": "gbt", "confirm": 2},
                      [{"seed": 0}], recs)
    summary = res.summary()
    assert summary["target_acc10"] == 0.8 and summary["budget_samples"] == 40
    md = summary_markdown(summary)
    assert "target ρ ≥ 0.9 and ±10 % accuracy ≥ 80 %" in md
    random_row = " | ".join(md_row(md, "random"))
    default_row = " | ".join(md_row(md, "default"))
    assert "no seed met the target in 40 samples" in random_row and "no seed stopped" in random_row
    assert "1 (baseline)" in random_row
    # default stopped (a false stop: +-10 % below its target), so the stop's values are there
    assert "0/1" in default_row and "0.9600" in default_row and "no seed met the target in 40 samples" in default_row
    assert "no run reached 60 samples" in default_row
    for row in (md_row(md, "random"), md_row(md, "default")):
        assert not any(c.startswith("[-") or c in ("-", "n/a") or c.endswith("n/a") for c in row)


def test_fmt_ci_says_why() -> None:
    inf = float("inf")
    assert fmt_ci({"median": inf, "lo": inf, "hi": inf, "n": 3, "interval": "range"}, never="never") == "never"
    assert fmt_ci({"median": inf, "lo": 40.0, "hi": inf, "n": 8, "interval": "95 %"},
                  never="not reached in 60 samples") == "not reached in 60 samples [40, not reached]"
    assert fmt_ci({"median": None, "lo": None, "hi": None, "n": 0}, empty="no seed stopped") == "no seed stopped"
