"""``doctor``: is this machine fit to measure? The checks, the noise floor and a verdict (exit 0 only when ok)."""

from __future__ import annotations

import argparse
import json

from acquisition.cli._common import DEFAULT_DB, add_device_args, device_from_args, int_arg, non_negative_int

__all__ = ["cmd_doctor", "register"]


def probe_n(text: str) -> int:
    """An integer >= 2 (two runs of one block cannot be compared)."""
    return int_arg(text, lambda v: v >= 2, "an integer >= 2")


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run :func:`profiler.doctor.diagnose` under the run lock, store it, print it; exit 0 only when ok."""
    from acquisition._lock import RunLock
    from acquisition.store import Store
    from profiler.doctor import diagnose

    device = device_from_args(args)
    device.check_available()
    with Store(args.db) as store, RunLock(store.path):
        report = diagnose(device, store=store, probe_n=args.probe_n, seed=args.seed, progress=not args.no_progress)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.describe())
    return 0 if report.verdict == "ok" else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``doctor`` to the subparsers ``sub``."""
    p = sub.add_parser("doctor", help="is this machine fit to measure? checks, noise floor and a verdict",
                       description="Check what disturbs timing (other processes' load, steal time, CPU frequency "
                                   "scaling and turbo, threads, transparent huge pages; on a GPU throttling, other "
                                   "compute processes, persistence and clocks), measure a fixed probe of mbconv "
                                   "blocks in two fresh worker processes and compare them. Prints a verdict: ok, "
                                   "busy (other processes compete for the device), noisy (the probe does not "
                                   "repeat, or a setting makes timings depend on the machine's state) or unusable "
                                   "(a probe measurement failed). The result is stored with the platform "
                                   "(table noise_floors) and its time charged as noise_profile.\n\n"
                                   "Exit code 0 when the verdict is ok, 1 otherwise, 2 for bad arguments.")
    add_device_args(p)
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--probe-n", dest="probe_n", type=probe_n, default=24, help="probe configurations, >= 2")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the probe's Sobol draw, >= 0")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_doctor)
