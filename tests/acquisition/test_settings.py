"""One source of settings: CampaignSpec's user settings make run's and ask's flags and ask/tell's settings."""

from __future__ import annotations

from acquisition.ask_tell import SETTINGS
from acquisition.campaign import CampaignSpec, setting_fields
from acquisition.cli import build_parser
from acquisition.cli.ask_tell import ASK_FIELDS, DEFAULT_ASK
from acquisition.cli.campaigns import RUN_FIELDS, run_defaults
from acquisition.cli.settings import SETTING_NAMES


def _options(command: str) -> dict[str, str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return {o: a.help or "" for a in sub._actions for o in a.option_strings}


def test_every_user_setting_is_a_flag_of_run_and_ask_with_the_commands_own_default() -> None:
    assert SETTING_NAMES and all(f.metadata["help"] for f in setting_fields())
    run, ask, d = _options("run"), _options("ask"), run_defaults()
    for name in SETTING_NAMES:
        flag = "--" + name.replace("_", "-")
        assert flag in run and flag in ask, flag
        assert name in RUN_FIELDS and name in ASK_FIELDS and name in SETTINGS
    assert "(default 0.12;" in run["--budget-hours"] and d["budget_hours"] == 0.12
    assert "(default none;" in ask["--budget-hours"]  # an external device's hours are whatever its tool takes
    assert f"(default {DEFAULT_ASK['budget_samples']})" in ask["--budget-samples"]


def test_a_flag_parses_to_the_fields_type_and_a_flag_left_out_is_none() -> None:
    args = build_parser().parse_args(["run", "--batch-size", "10", "--target-spearman", "0.9", "--verification",
                                      "holdout"])
    assert (args.batch_size, args.target_spearman, args.verification, args.seed) == (10, 0.9, "holdout", None)
    spec = CampaignSpec(name="x", family="mbconv", batch_size=args.batch_size).validate()
    assert spec.batch_size == 10
