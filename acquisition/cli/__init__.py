"""``python -m acquisition``: profile blocks, inspect the store, fit and use predictors, run campaigns.

One module per group of subcommands, each with a ``register(sub)`` that adds its subparsers:
:mod:`~acquisition.cli.profiling` (``profile``, ``remeasure``), :mod:`~acquisition.cli.data` (``status``,
``measurements``), :mod:`~acquisition.cli.models` (``fit``, ``predict``), :mod:`~acquisition.cli.campaigns`
(``run``, ``report``), :mod:`~acquisition.cli.doctor` (``doctor``); the helpers they share are in
:mod:`~acquisition.cli._common`. Bad input gets a one-line error naming the bad value and exit code 2, and the
database is left untouched (every check runs before the database is opened for writing).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from acquisition.cli._common import (
    DEFAULT_DB,
    CliError,
    HelpFormatter,
    Parser,
    _check_output,
    _jobs,
    _load_plugins,
    _non_negative_int,
    _Parser,
    _positive_float,
    _positive_int,
    add_device_args,
    add_plugin_arg,
    device_from_args,
    jobs,
    listed,
    load_plugins,
    non_negative_int,
    positive_float,
    positive_int,
)
from acquisition.cli.campaigns import DEFAULT_RUN, RUN_FIELDS, _print_sources, _print_summary, run_defaults, run_spec
from acquisition.cli.data import FIXED_COLUMNS
from acquisition.cli.models import PREDICT_COLUMNS

__all__ = ["DEFAULT_DB", "GROUPS", "CliError", "HelpFormatter", "Parser", "add_device_args", "add_plugin_arg",
           "build_parser", "device_from_args", "jobs", "listed", "load_plugins", "main", "non_negative_int",
           "positive_float", "positive_int", "run_command", "user_errors"]

# the modules (under acquisition.cli) whose register(sub) adds a group of subcommands, in --help order
GROUPS = ("profiling", "data", "models", "campaigns", "ask_tell", "doctor")

# re-exported under the names they had before the split (nas, studies and tests import them from here)
_REEXPORTED = (DEFAULT_RUN, RUN_FIELDS, FIXED_COLUMNS, PREDICT_COLUMNS, _check_output, _jobs, _load_plugins,
               _non_negative_int, _Parser, _positive_float, _positive_int, _print_sources, _print_summary,
               run_defaults, run_spec)

log = logging.getLogger("latency_acquisition")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m acquisition``: one subparser per command, added by each group of :data:`GROUPS`."""
    parser = Parser(prog="python -m acquisition",
                    description="Latency acquisition: profile neural-network blocks and keep every measurement, "
                                "fit latency predictors on them, and run campaigns that choose what to profile "
                                "next.",
                    epilog="block families: {families}\n\nmodels: {models}\n\nstrategies: {strategies}\n\n"
                           "(installed plug-ins included; --plugin MODULE adds more)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for group in GROUPS:
        importlib.import_module(f"acquisition.cli.{group}").register(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions every ``python -m`` command reports as one line with exit code 2 (bad input)."""
    from acquisition._lock import DatabaseBusy
    from acquisition.campaign import CampaignError
    from acquisition.fitting import FitError
    from acquisition.noise import NoiseError
    from acquisition.store import StoreError
    from acquisition.strategies import StrategyError
    from profiler.devices import DeviceError
    from profiler.families import FamilyError
    from profiler.protocol import ProtocolError
    from profiler.space import SpaceError
    from surrogates import BundleError, EncoderError, ModelError

    return (CliError, StoreError, DeviceError, FamilyError, ProtocolError, SpaceError, FitError, BundleError,
            EncoderError, ModelError, CampaignError, StrategyError, DatabaseBusy, NoiseError)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *,
                extra_errors: tuple[type[BaseException], ...] = (), interrupted: str) -> int:
    """Parse ``argv`` and run the chosen subcommand: user errors are one line and exit 2, a profiler failure
    exit 1, Ctrl-C exit 130 with ``interrupted`` said, a closed output pipe a quiet exit 0."""
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    prog = f"{parser.prog} {args.command}"
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        from profiler.fleet import FleetError
        from profiler.worker import ProfilerError

        if isinstance(exc, (*user_errors(), *extra_errors)):
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, (ProfilerError, FleetError)):  # the devices failed, not the input
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 1
        if _out_of_room(exc):  # the disk, not the input: everything committed is kept
            print(f"{prog}: error: the database could not be written ({exc}): make room, then run the same command "
                  "again (what was committed is kept; a campaign resumes where it stopped)", file=sys.stderr)
            return 1
        if isinstance(exc, BrokenPipeError):  # output piped into e.g. `head`: stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130


def _out_of_room(exc: BaseException) -> bool:
    """A write that failed for want of room: SQLite's "database or disk is full", or the OS's ENOSPC / EFBIG."""
    import errno
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc) or "disk I/O error" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m acquisition``'s entry point: the exit code."""
    return run_command(build_parser(), argv, interrupted="every measurement finished so far is stored")
