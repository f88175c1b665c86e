"""``ask`` and ``tell``: a campaign on a device measured by your own tool (:mod:`acquisition.ask_tell`).

``ask`` writes the next configurations to measure as CSV (``key``, one column per parameter, and empty
``latency_ms``, ``cost_s`` and ``failed`` columns); ``tell`` reads the file back once ``latency_ms`` is filled in.
Every check runs before anything is written; a bad row of ``tell``'s file is named by its line and nothing of
the file is stored.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from acquisition.cli._common import (
    DEFAULT_DB,
    CliError,
    add_plugin_arg,
    check_output,
    load_plugins,
    positive_int,
)
from acquisition.cli.settings import SETTING_NAMES, add_setting_args

__all__ = ["DEFAULT_ASK", "cmd_ask", "cmd_tell", "platform_fields", "register"]

# the campaign settings ask's flags set (flag dest = CampaignSpec field)
ASK_FIELDS = (*SETTING_NAMES, "transfer")
# a new campaign's defaults where they differ from acquisition.Campaign's: run's target and samples budget (no
# hours budget by default: an external device's seconds are whatever its tool takes)
DEFAULT_ASK = {"target_spearman": 0.98, "budget_samples": 400}


def platform_fields(items: list[str]) -> dict[str, Any]:
    """``--platform-field KEY=VALUE`` items as fingerprint fields: values that read as integers, finite numbers
    or ``true``/``false`` become those, anything else stays text.

    Example:
        >>> platform_fields(["device=Pixel 8", "threads=4", "fp16=true", "runtime=tflite 2.16"])
        {'device': 'Pixel 8', 'threads': 4, 'fp16': True, 'runtime': 'tflite 2.16'}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--platform-field {item!r} is not allowed: expected KEY=VALUE")
        out[key.strip()] = _field_value(value.strip())
    return out


def _field_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return text
    return v if math.isfinite(v) else text


def _stored_campaign(db: str, name: str) -> dict[str, Any] | None:
    from acquisition.store import Store

    if not os.path.isfile(db):
        return None
    with Store(db, readonly=True) as ro:
        return ro.get_campaign(name)


def cmd_ask(args: argparse.Namespace) -> int:
    """Write the next configurations to measure as CSV; a campaign that is done exports its bundle instead."""
    from acquisition.ask_tell import Campaign, Platform, write_asks_csv

    load_plugins(args.plugin)
    if args.platform_name is not None and args.platform is not None:
        raise CliError("give --platform-name (a device to declare) or --platform ID (one in the database), not both")
    if args.platform_field and args.platform_name is None:
        raise CliError("--platform-field needs --platform-name (the device the fields describe)")
    if args.out != "-":
        check_output(args.out, "--out", db=args.db)
    bundle = args.bundle or os.path.join(os.path.dirname(os.path.abspath(args.db)), f"{args.campaign}.bundle")
    check_output(bundle, "--bundle", db=args.db)
    platform: Any = args.platform
    if args.platform_name is not None:
        platform = Platform(args.platform_name, **platform_fields(args.platform_field))
    settings = {f: getattr(args, f) for f in ASK_FIELDS if getattr(args, f) is not None}
    if _stored_campaign(args.db, args.campaign) is None:  # a new campaign: ask's defaults, a family, a device
        if args.family is None:
            raise CliError(f"campaign {args.campaign!r} is not in {args.db}: give --family (and --platform-name or "
                           "--platform) to create it")
        if platform is None:
            raise CliError(f"campaign {args.campaign!r} is not in {args.db}: give its device, --platform-name NAME "
                           "[--platform-field KEY=VALUE ...] or --platform ID")
        settings = {**DEFAULT_ASK, **settings}
    with Campaign(args.db, args.campaign, family=args.family, platform=platform, protocol=args.protocol,
                  cost_s=args.cost_s, **settings) as campaign:
        asks = campaign.ask(args.n)
        status = campaign.status()
        exported = None
        if status.done and status.state != "failed":
            exported = campaign.export(bundle)
        write_asks_csv(asks, campaign.family, sys.stdout if args.out == "-" else args.out)
    where = "standard output" if args.out == "-" else os.path.abspath(args.out)
    if asks:
        print(f"asked for {len(asks)} configuration(s) of campaign {args.campaign} -> {where}; measure them, fill "
              f"in latency_ms and run `python -m acquisition tell --db {args.db} --campaign {args.campaign} --csv "
              "FILE`", file=sys.stderr)
    elif not status.done:
        print(f"nothing more to ask: campaign {args.campaign} waits for {status.pending} configuration(s) to be "
              "told", file=sys.stderr)
    print(status.describe(), file=sys.stderr)
    if exported:
        print(f"predictor bundle {os.path.abspath(exported)}", file=sys.stderr)
    return 0


def cmd_tell(args: argparse.Namespace) -> int:
    """Record the measurements of a CSV file (all rows or none) and say where the campaign stands."""
    from acquisition.ask_tell import Campaign

    load_plugins(args.plugin)
    if not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist: `python -m acquisition ask` creates the campaign")
    if args.csv != "-" and not os.path.isfile(args.csv):
        raise CliError(f"--csv {args.csv!r} does not exist")
    if _stored_campaign(args.db, args.campaign) is None:
        raise CliError(f"--campaign {args.campaign!r} is not in {args.db}: `python -m acquisition ask` creates it")
    with Campaign(args.db, args.campaign) as campaign:
        told = campaign.tell_csv(sys.stdin, label="<stdin>") if args.csv == "-" else campaign.tell_csv(args.csv)
        status = campaign.status()
    left = f"; {told.left} row(s) without a latency stay pending" if told.left else ""
    print(f"told {told.told} measurement(s) and {told.failed} failure(s) to campaign {args.campaign}{left}")
    print(status.describe())
    return 0


def _campaign_args(p: argparse.ArgumentParser) -> None:
    """--db and --campaign: the campaign both commands work on."""
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--campaign", default="default", help="campaign name")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``ask`` and ``tell`` to the subparsers ``sub``."""
    p = sub.add_parser("ask", help="ask/tell: the next configurations to measure on your own device, as CSV",
                       description="Create or resume an ask/tell campaign and write the next configurations to "
                                   "measure (key, one column per parameter, empty latency_ms, cost_s and failed "
                                   "columns). Measure them with your own tool, fill in latency_ms and give the "
                                   "file to `tell`. Asking again before telling gives the same configurations. A "
                                   "campaign that is done asks for nothing and exports its predictor bundle. A new "
                                   "campaign needs --family and a platform: --platform-name with free-form "
                                   "--platform-field KEY=VALUE fingerprint fields, or --platform ID of one in the "
                                   "database. A campaign that exists is resumed with its stored settings (only "
                                   "budgets and --cost-s may change).")
    _campaign_args(p)
    p.add_argument("--n", type=positive_int, default=None,
                   help="at most this many configurations (default: the campaign's whole current batch)")
    p.add_argument("--out", default="-", help="CSV file to write, or - for standard output")
    p.add_argument("--family", default=None, help="block family of a new campaign: {families}")
    p.add_argument("--platform-name", dest="platform_name", default=None,
                   help="a device to declare (a new campaign's platform): its name")
    p.add_argument("--platform-field", dest="platform_field", action="append", default=[], metavar="KEY=VALUE",
                   help="a fingerprint field of --platform-name, e.g. runtime='tflite 2.16' (repeatable)")
    p.add_argument("--platform", default=None, metavar="ID", help="a platform already in the database, by id")
    p.add_argument("--protocol", default=None,
                   help="how your tool measures, part of every measurement's identity (default external)")
    p.add_argument("--cost-s", dest="cost_s", type=_seconds_arg, default=None,
                   help="device seconds charged per measurement that gives no cost_s of its own (kept with the "
                        "campaign; default: none, every row must give cost_s)")
    add_setting_args(p, DEFAULT_ASK)
    p.add_argument("--transfer", default=None, choices=("auto", "none"),
                   help="auto: the family's measurements on the database's other platforms are priors (default "
                        "auto)")
    p.add_argument("--bundle", default=None,
                   help="where a campaign that is done exports its predictor (default CAMPAIGN.bundle next to the "
                        "database)")
    add_plugin_arg(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("tell", help="ask/tell: record the latencies measured on your own device, from CSV",
                       description="Record the measurements of a CSV file written by `ask` and filled in: a key "
                                   "column (or one column per parameter), latency_ms, optionally cost_s (else the "
                                   "campaign's --cost-s) and failed (a reason, for a configuration your device "
                                   "cannot run). Rows left without a latency stay pending. Every row is checked "
                                   "first; a bad row is named by its line and nothing of the file is stored.")
    _campaign_args(p)
    p.add_argument("--csv", required=True, help="the measured CSV file, or - for standard input")
    add_plugin_arg(p, "the campaign's block family")
    p.set_defaults(func=cmd_tell)


def _seconds_arg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds >= 0")
    return v
