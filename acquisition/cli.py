"""``python -m acquisition``: profile blocks, inspect the store, export measurements.

Subcommands: ``profile``, ``status``, ``measurements``. Bad input gets a one-line error naming the bad value and
exit code 2, and the database is left untouched (every check runs before the database is opened for writing).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

log = logging.getLogger("latency_acquisition")
DEFAULT_DB = "acquisition.sqlite"


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return v


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative integer")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return v


def _load_plugins(modules: Sequence[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise CliError(f"--plugin {name!r} could not be imported: {type(exc).__name__}: {exc}") from None


# -- profile -----------------------------------------------------------------------------------------------------
def cmd_profile(args: argparse.Namespace) -> int:
    from acquisition.profiling import profile_configs
    from acquisition.store import Store
    from profiler.devices import parse_device
    from profiler.families import get_family
    from profiler.protocol import AdaptiveProtocol, FixedProtocol
    from profiler.worker import Profiler

    _load_plugins(args.plugin)
    family = get_family(args.family)
    device = parse_device(args.device, threads=args.threads)
    device.check_available()
    if args.protocol == "fixed":
        protocol = FixedProtocol(repeats=args.repeats or 10_000)
    else:
        if args.repeats is not None:
            raise CliError("--repeats only applies to --protocol fixed")
        protocol = AdaptiveProtocol()
    configs = family.space.sample(args.n, method=args.sampler, seed=args.seed, family=family.name)
    with Store(args.db) as store, Profiler(device, protocol, timeout_s=args.timeout) as prof:
        s = profile_configs(store, prof, family, configs, retry_failed=args.retry_failed,
                            progress=not args.no_progress)
        db_path = os.path.abspath(store.path)
    ok = s.profiled - s.failed
    print(f"{family.name} on {device.spec} (platform {s.platform}, protocol {protocol.id}): profiled {s.profiled} "
          f"({ok} ok, {s.failed} failed, {s.unstable} unstable), reused {s.reused} stored")
    print(f"profiling time {s.cost_s:.1f} s ({s.cost_s / 3600:.4f} h); database {db_path}")
    for key, reason in s.failures[:5]:
        print(f"  failed {key}: {reason}")
    if len(s.failures) > 5:
        print(f"  ... {len(s.failures) - 5} more failures: see `python -m acquisition measurements`")
    return 0


# -- status ------------------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from acquisition.store import Store

    with Store(args.db, readonly=True) as store:
        st = store.status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"database {st['database']} (schema {st['schema_version']})")
    print(f"measurements {st['measurements']} ({st['failed']} failed), profiling hours {st['profiling_hours']:.4f}")
    if st["platforms"]:
        print("platforms:")
        for p in st["platforms"]:
            threads = f", {p['threads']} thread(s)" if p.get("threads") else ""
            print(f"  {p['id']}  {p['device']}  {p['model']}{threads}, torch {p['torch']}")
    if st["families"]:
        header = ("platform", "family", "ok", "failed", "unstable", "hours")
        rows = [(g["platform"], g["family"], str(g["ok"]), str(g["failed"]), str(g["unstable"]),
                 f"{g['profiling_hours']:.4f}") for g in st["families"]]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


# -- measurements ------------------------------------------------------------------------------------------------
FIXED_COLUMNS = ["family", "key", "platform", "protocol", "status", "reason", "min_ms", "median_ms", "p10_ms",
                 "p90_ms", "mean_ms", "n", "timed_s", "cost_s", "attempts", "stable", "unstable_reason",
                 "created_at"]


def cmd_measurements(args: argparse.Namespace) -> int:
    from acquisition.store import Store

    with Store(args.db, readonly=True) as store:
        st = store.status()
        fams = sorted({g["family"] for g in st["families"]})
        plats = [p["id"] for p in st["platforms"]]
        if args.family is not None and args.family not in fams:
            raise CliError(f"--family {args.family!r} has no measurements in {args.db} "
                           f"(families there: {', '.join(fams) or 'none'})")
        if args.platform is not None and args.platform not in plats:
            raise CliError(f"--platform {args.platform!r} is not in {args.db} "
                           f"(platforms: {', '.join(plats) or 'none'})")
        rows = list(store.measurements(family=args.family, platform=args.platform))
    params: list[str] = []
    for r in rows:
        params.extend(k for k in r["config"] if k not in params and k not in FIXED_COLUMNS)
    if args.csv == "-":
        out_cm: Any = contextlib.nullcontext(sys.stdout)
    else:
        parent = os.path.dirname(os.path.abspath(args.csv))
        db_files = {os.path.realpath(args.db + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
        if os.path.realpath(args.csv) in db_files:
            raise CliError(f"--csv {args.csv!r} is the database itself: choose another file")
        if os.path.isdir(args.csv) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise CliError(f"--csv {args.csv!r} cannot be written")
        out_cm = open(args.csv, "w", newline="")  # noqa: SIM115 (closed by the with below)
    with out_cm as out:
        w = csv.writer(out)
        w.writerow(params + FIXED_COLUMNS)
        for r in rows:
            w.writerow([r["config"].get(p, "") for p in params] + [r.get(c) for c in FIXED_COLUMNS])
    if args.csv != "-":
        print(f"wrote {len(rows)} measurements to {os.path.abspath(args.csv)}", file=sys.stderr)
    return 0


# -- parser ------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m acquisition",
                     description="Latency acquisition: profile neural-network blocks and keep every measurement.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("profile", help="profile N sampled configurations of a block family",
                       description="Sample N configurations of a block family and profile them on a device. "
                                   "Configurations already stored for this platform and protocol are reused.")
    p.add_argument("--family", default="mbconv", help="block family (built-in: mbconv, resv1, resv2)")
    p.add_argument("--n", type=_positive_int, default=200, help="number of configurations (default 200)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads (cpu only, default 1)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.add_argument("--sampler", choices=("sobol", "random"), default="sobol", help="how configurations are drawn")
    p.add_argument("--protocol", choices=("adaptive", "fixed"), default="adaptive",
                   help="adaptive (default) or the paper's fixed protocol (N invocations, min)")
    p.add_argument("--repeats", type=_positive_int, default=None, help="invocations of the fixed protocol "
                   "(default 10000)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="sampling seed, >= 0 (default 0)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="seconds before a block counts as hung")
    p.add_argument("--retry-failed", action="store_true", help="profile configurations stored as failed again")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it may register block families); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("status", help="platforms, families, measurement counts and profiling hours",
                       description="Summarise a database: platforms, families, measurements, failures, hours.")
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("measurements", help="export every stored measurement as CSV",
                       description="Export stored measurements, one row each: the configuration's parameters as "
                                   "columns, then family, key, platform, status, statistics and cost.")
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.add_argument("--family", default=None, help="only this family")
    p.add_argument("--platform", default=None, help="only this platform id")
    p.add_argument("--csv", required=True, metavar="OUT", help="output CSV file, or - for standard output")
    p.set_defaults(func=cmd_measurements)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from acquisition.store import StoreError
    from profiler.devices import DeviceError
    from profiler.families import FamilyError
    from profiler.protocol import ProtocolError
    from profiler.space import SpaceError
    from profiler.worker import ProfilerError

    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    prog = f"{parser.prog} {args.command}"
    try:
        return int(args.func(args) or 0)
    except (CliError, StoreError, DeviceError, FamilyError, ProtocolError, SpaceError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ProfilerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; every measurement finished so far is stored", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
