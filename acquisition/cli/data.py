"""``status`` and ``measurements``: read what the database holds (read-only); ``import``: a recorded table."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from typing import Any

from acquisition.cli._common import DEFAULT_DB, CliError, add_plugin_arg, listed, load_plugins
from acquisition.tables import text_table

__all__ = ["FIXED_COLUMNS", "cmd_import", "cmd_measurements", "cmd_status", "register"]

FIXED_COLUMNS = ["family", "key", "platform", "protocol", "status", "reason", "min_ms", "median_ms", "p10_ms",
                 "p90_ms", "mean_ms", "n", "timed_s", "cost_s", "attempts", "stable", "unstable_reason",
                 "noise", "placements", "created_at"]


def cmd_status(args: argparse.Namespace) -> int:
    """Print the database's platforms, families, measurement counts, hours and campaigns."""
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
            torch = f", torch {p['torch']}" if p.get("torch") else ""
            print(f"  {p['id']}  {p['device']}  {p['label']}{torch}")
    if st["families"]:
        header = ("platform", "family", "ok", "failed", "unstable", "hours")
        rows = [(g["platform"], g["family"], str(g["ok"]), str(g["failed"]), str(g["unstable"]),
                 f"{g['profiling_hours']:.4f}") for g in st["families"]]
        print(text_table(header, rows, indent="  "))
    if st["campaigns"]:
        print("campaigns:")
        for c in st["campaigns"]:
            rho = "not verified yet" if c["spearman"] is None else f"{c['spearman']:.4f}"
            print(f"  {c['name']}  {c['family']}  {c['state']}  {c['strategy']}+{c['model']}  {c['samples']} samples  "
                  f"{c['iterations']} iterations  rho {rho} (target {c['target_spearman']})")
    return 0


def cmd_measurements(args: argparse.Namespace) -> int:
    """Export the stored measurements as CSV: parameters as columns, then :data:`FIXED_COLUMNS`."""
    from acquisition.store import Store

    load_plugins(args.plugin)
    with Store(args.db, readonly=True) as store:
        st = store.status()
        fams = sorted({g["family"] for g in st["families"]})
        plats = [p["id"] for p in st["platforms"]]
        if args.family is not None and args.family not in fams:
            raise CliError(f"--family {args.family!r} has no measurements in {args.db} "
                           f"(families there: {listed(fams)})")
        if args.platform is not None and args.platform not in plats:
            raise CliError(f"--platform {args.platform!r} is not in {args.db} (platforms: {listed(plats)})")
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


def cmd_import(args: argparse.Namespace) -> int:
    """Import a recorded many-device table: one ``recorded`` platform per device (:mod:`acquisition.importing`)."""
    from acquisition._lock import RunLock
    from acquisition.importing import TableImportError, import_table
    from acquisition.store import Store
    from profiler.families import get_family

    load_plugins(args.plugin)
    family = get_family(args.family)
    where: dict[str, list[str]] = {}
    for item in args.where or []:
        col, sep, val = item.partition("=")
        if not sep or not col.strip():
            raise CliError(f"--where {item!r} is not allowed: expected COLUMN=VALUE")
        where.setdefault(col.strip(), []).append(val.strip())
    params = [p.strip() for p in args.params.split(",") if p.strip()] if args.params else None
    with RunLock(args.db), Store(args.db) as store:
        try:
            done = import_table(store, args.csv, family, device_col=args.device_col, params=params,
                                latency_col=args.latency_col, unit=args.unit, cost_col=args.cost_col, where=where)
        except TableImportError as e:
            raise CliError(str(e)) from None
    for d in done:
        print(f"{d.device}: platform {d.platform}, {d.added} measurement(s) added, {d.kept} already stored")
    print(f"{sum(d.added for d in done)} measurement(s) of {family.name!r} on {len(done)} recorded platform(s) in "
          f"{args.db}: `run --transfer auto` learns from them")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``status``, ``measurements`` and ``import`` to the subparsers ``sub``."""
    p = sub.add_parser("status", help="platforms, families, measurement counts and profiling hours",
                       description="Summarise a database: platforms, families, measurements, failures, hours.")
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("measurements", help="export every stored measurement as CSV",
                       description="Export stored measurements, one row each: the configuration's parameters as "
                                   "columns, then family, key, platform, status, statistics and cost.")
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--family", default=None, help="only this family (default: every family)")
    p.add_argument("--platform", default=None, help="only this platform id (default: every platform)")
    p.add_argument("--csv", required=True, metavar="OUT", help="output CSV file, or - for standard output")
    add_plugin_arg(p, "block families")
    p.set_defaults(func=cmd_measurements)

    p = sub.add_parser("import", help="load a recorded many-device latency table as platforms",
                       description="Import a table of block latencies recorded on several devices (one column names "
                                   "the device): each device becomes a platform of kind 'recorded', each row a "
                                   "measurement of the family, so that campaigns learn from them (--transfer "
                                   "auto). Importing again adds only what is new; a bad row stores nothing.")
    p.add_argument("--csv", required=True, help="the table: parameter columns, a latency column, a device column")
    p.add_argument("--family", required=True, help="the block family of the rows: {families}")
    p.add_argument("--device-col", required=True, help="the column naming each row's device")
    p.add_argument("--params", default=None, help="parameter columns, comma-separated (default: the family's "
                                                  "parameter names)")
    p.add_argument("--latency-col", default="latency_ms", help="the latency column")
    p.add_argument("--unit", default="ms", choices=["ms", "s", "us", "ns"], help="unit of the latency column")
    p.add_argument("--cost-col", default=None, help="seconds each row cost to measure (default: none, 0 s)")
    p.add_argument("--where", action="append", metavar="COL=VALUE", help="import only these rows (repeatable)")
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    add_plugin_arg(p, "block families")
    p.set_defaults(func=cmd_import)
