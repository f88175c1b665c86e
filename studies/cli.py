"""``python -m studies``: compare strategies over many seeds on a replayed table or a live device, and report.

Subcommands: ``compare`` (run or resume a budgeted study, then write its report), ``report`` (the report of a
stored study) and ``reproduce table3`` (the paper's block-level table, see :mod:`studies.paper`).
Bad input gets a one-line error naming the bad value and exit code 2; everything is checked (the table parsed,
the strategies and model known) before the study database is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from acquisition.campaign import VERIFICATIONS, spec_defaults
from acquisition.cli import (
    CliError,
    Parser,
    add_plugin_arg,
    load_plugins,
    positive_float,
    positive_int,
    run_command,
)
from profiler.files import atomic_write

__all__ = ["main"]

log = logging.getLogger("latency_acquisition.studies")


def _unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1]")
    return v


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1]")
    return v


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    """``10`` (seeds 0-9) or ``0,3,5`` or ``0-4``."""
    form = "a seed count (10: seeds 0-9), a list (0,3,5) or a range (0-4; 0-0 for seed 0 alone)"
    t = text.strip()
    try:
        if "," in t:
            seeds = [int(x) for x in t.split(",") if x.strip()]
        elif "-" in t[1:]:  # a range a-b (a leading "-" is a negative count, below)
            a, b = t.split("-", 1)
            seeds = list(range(int(a), int(b) + 1))
            if not seeds:
                raise argparse.ArgumentTypeError(f"{text!r} is an empty range: it must go up, e.g. 0-4")
        else:
            count = int(t)
            if count <= 0:
                raise argparse.ArgumentTypeError(f"{text!r} is a seed count, and {count} seeds is no study: expected "
                                                 f"{form}")
            seeds = list(range(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {form}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} gives no seed: expected {form}")
    if any(x < 0 for x in seeds):
        raise argparse.ArgumentTypeError(f"{text!r} has a negative seed: seeds are integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} names a seed twice")
    return seeds


def _source(args: argparse.Namespace) -> Any:
    from studies.sources import LiveSource, ReplaySource

    if args.csv and args.family:
        raise CliError("give either --csv (replay a table) or --family (profile live), not both")
    if args.platform and not args.replay_db:
        raise CliError("--platform only applies to --replay-db")
    if args.replay_db:
        if args.csv:
            raise CliError("give either --csv or --replay-db as the replayed table, not both")
        if not args.family:
            raise CliError("--replay-db needs --family naming the family to replay")
        if not os.path.isfile(args.replay_db):
            raise CliError(f"--replay-db {args.replay_db!r} does not exist")
        from profiler.families import get_family

        get_family(args.family)
        src = ReplaySource(store=args.replay_db, family=args.family, platform=args.platform,
                           cost_protocol=args.cost_protocol, cost_db=args.cost_from_db)
        src.table()  # a store without the family, or with several platforms and none named, fails up front
        return src
    if args.csv:
        if not args.params:
            raise CliError("--csv needs --params naming the parameter columns")
        src = ReplaySource(csv=args.csv, params=_names(args.params), latency_col=args.latency_col, unit=args.unit,
                           cost_col=args.cost_col, where=list(args.where or []),
                           categorical=_names(args.categorical or ""), numeric=_names(args.numeric or ""),
                           duplicates=args.duplicates, bad_rows="drop" if args.drop_bad_rows else "error",
                           cost_protocol=args.cost_protocol, cost_db=args.cost_from_db)
        src.table()  # parse now: a bad table is an error before anything is written
        if args.cost_from_db:
            if not os.path.isfile(args.cost_from_db):
                raise CliError(f"--cost-from-db {args.cost_from_db!r} does not exist")
            src.cost_model()  # fit now: a store without enough charged measurements is an error up front
        return src
    if args.family:
        from profiler.families import get_family

        get_family(args.family)
        return LiveSource(family=args.family, device=args.device)
    raise CliError("name a source: --csv TABLE (replay) or --family NAME (live)")


def cmd_compare(args: argparse.Namespace) -> int:
    from studies.report import write_report
    from studies.study import Study

    load_plugins(args.plugin)
    source = _source(args)
    out = args.out
    db = args.db or os.path.join(out, "study.sqlite")
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out {out!r} exists and is not a directory")
    name = args.name or "compare"
    study = Study(name, source, arms=_names(args.arms), seeds=args.seeds,
                  target_spearman=args.target_spearman, target_acc10=args.target_acc10,
                  budget_samples=args.budget_samples, budget_hours=args.budget_hours, model=args.model,
                  batch_size=args.batch_size, initial_size=args.initial_size or args.batch_size,
                  validation_size=args.validation_size, pool_size=args.pool_size, db=db, acc10_at=args.acc10_at,
                  run_to_budget=not args.stop_at_target, random_share=args.random_share,
                  verification=args.verification, stop_rule=args.stop_rule, test_size=args.test_size,
                  transfer_where=list(args.transfer_where or []), transfer_db=args.transfer_db,
                  transfer_shuffle=args.transfer_shuffle, transfer_by=args.transfer_by, plugins=args.plugin)
    study.validate()
    os.makedirs(out, exist_ok=True)
    result = study.run(n_jobs=args.jobs, progress=not args.json)
    paths = write_report(result, out)
    with open(paths["json" if args.json else "markdown"]) as fh:  # print what was written, not a second summary
        print(fh.read())
    if not args.json:
        print(f"study database: {db}\nreport: {paths['markdown']}, {paths['curves']}, {paths['records']}\n"
              f"wall time: {result.wall_s:.0f} s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from studies.report import write_report
    from studies.study import load_study

    if not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist")
    result = load_study(args.db, args.study)
    paths = write_report(result, args.out, baseline=args.baseline, acc10_at=args.acc10_at)
    with open(paths["json" if args.json else "markdown"]) as fh:
        print(fh.read())
    if not args.json:
        print(f"report: {', '.join(paths.values())}")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from studies.transfer_study import run_transfer_study, write_transfer_report

    if not os.path.isfile(args.csv):
        raise CliError(f"--csv {args.csv!r} does not exist")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CliError(f"--out {args.out!r} exists and is not a directory")
    at = [int(x) for x in _names(args.at)] if args.at else None
    if at is not None and (not at or any(x <= 0 for x in at)):
        raise CliError(f"--at {args.at!r} is not allowed: expected sample counts > 0, comma-separated")
    rows = run_transfer_study(
        args.csv, params=_names(args.params), latency_col=args.latency_col, device_col=args.device_col,
        targets=_names(args.targets) if args.targets else None, where=list(args.where or []), unit=args.unit,
        categorical=_names(args.categorical or ""), numeric=_names(args.numeric or ""), duplicates=args.duplicates,
        seeds=args.seeds, target_spearman=args.target_spearman, budget_samples=args.budget_samples,
        batch_size=args.batch_size, initial_size=args.initial_size, **({"at": at} if at else {}), out=args.out,
        n_jobs=args.jobs, progress=not args.json)
    paths = write_transfer_report(rows, args.out, args.target_spearman)
    with open(paths["json" if args.json else "md"]) as fh:
        print(fh.read())
    if not args.json:
        print(f"report: {', '.join(paths.values())}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from studies.paper import table3, table3_markdown
    from studies.report import _jsonable

    load_plugins(args.plugin)
    if args.name != "table3":
        raise CliError(f"unknown study {args.name!r}: available studies are table3")
    if args.csv and not os.path.isfile(args.csv):
        raise CliError(f"--csv {args.csv!r} does not exist")
    if args.db is None and not args.csv:
        raise CliError("nothing to reproduce on: give --db (this CPU) and/or --csv (a recorded table)")
    families = _names(args.families)
    from profiler.families import get_family

    for f in families:
        get_family(f)
    rows = table3(db=args.db, families=families, samples=args.samples, live=not args.no_live, device=args.device,
                  csv=args.csv or None, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    md = table3_markdown(rows)
    with atomic_write(os.path.join(args.out, "table3.md")) as fh:
        fh.write(md)
    with atomic_write(os.path.join(args.out, "table3.json")) as fh:
        json.dump(_jsonable(rows), fh, indent=2)
    print(json.dumps(_jsonable(rows), indent=2) if args.json else md)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m studies``; ``--help`` shows every default."""
    p = Parser(prog="python -m studies", description=__doc__.split("\n\n")[0],
               epilog="strategies: {strategies}\n\nmodels: {models}\n\nblock families: {families}\n\n"
                      "(installed plug-ins included; --plugin MODULE adds more)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (_add_compare, _add_transfer, _add_reproduce, _add_report):
        add(sub)
    return p



def _add_compare(sub: Any) -> None:
    c = sub.add_parser("compare", help="run (or resume) a budgeted study and write its report",
                       description="Run every arm over every seed on one source (a replayed table or store, or a "
                                   "live device) with one budget and target, then write the report: samples and "
                                   "hours to a verified target per arm, paired ratios against the baseline, "
                                   "learning curves. A study that exists is resumed (finished seeds are read back).")
    _add_sources(c)
    st = _add_study_settings(c)
    _add_transfer_sources(c)
    st.add_argument("--stop-at-target", action="store_true",
                    help="end each campaign at its target instead of running the whole budget")
    st.add_argument("--jobs", type=int, default=-1, help="parallel seeds (replay only; -1 = all cores)")
    st.add_argument("--db", help="study database (default: OUT/study.sqlite)")
    st.add_argument("--out", default="study-report", help="report directory")
    st.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_plugin_arg(st)
    c.set_defaults(func=cmd_compare)



def _add_sources(c: argparse.ArgumentParser) -> None:
    """compare's sources: a replayed table, a replayed store or a live device."""
    src = c.add_argument_group("source: a replayed table")
    src.add_argument("--csv", help="table of configurations and latencies")
    src.add_argument("--params", help="parameter columns, comma-separated (needed with --csv)")
    src.add_argument("--categorical", help="parameter columns to treat as categorical (default: inferred)")
    src.add_argument("--numeric", help="parameter columns to treat as numeric (default: inferred)")
    src.add_argument("--latency-col", default="latency_ms", help="the table's latency column")
    src.add_argument("--unit", default="ms", choices=["ms", "s", "us", "ns"], help="unit of the latency column")
    src.add_argument("--cost-col", help="profiling cost per row (seconds) (default: the protocol cost model)")
    src.add_argument("--cost-protocol", default="adaptive", choices=["adaptive", "fixed"],
                     help="documented protocol cost model when the table has no cost column")
    src.add_argument("--cost-from-db", metavar="DB",
                     help="charge what this machine's profiler did: a cost model fitted on DB's ledger")
    src.add_argument("--where", action="append", metavar="COL=VALUE",
                     help="keep rows where COL=VALUE (repeatable; default: every row)")
    src.add_argument("--duplicates", default="error", choices=["error", "median", "min", "first"],
                     help="what to do with rows of the same configuration")
    src.add_argument("--drop-bad-rows", action="store_true", help="skip rows whose latency is not a positive number")
    sdb = c.add_argument_group("source: a replayed store (each row's min latency and its real profiling cost)")
    sdb.add_argument("--replay-db", metavar="DB", help="replay the stored measurements of --family in DB")
    sdb.add_argument("--platform", help="platform id in --replay-db (needed when it holds several)")
    live = c.add_argument_group("source: a live device")
    live.add_argument("--family", help="block family to profile live (or to replay from --replay-db): {families}")
    live.add_argument("--device", default="cpu", help="device of a live source")


def _add_study_settings(c: argparse.ArgumentParser) -> Any:
    """compare's study settings (the group is returned: the output options join it)."""
    st = c.add_argument_group("study")
    st.add_argument("--name", help="study name (default: compare)")
    st.add_argument("--arms", "--strategies", dest="arms", default="default,random",
                    help="comma-separated arms: 'default' (run's whole default configuration), 'default:MODEL' "
                         "(the same with another model, or auto), 'random' (the naive baseline: random sampling "
                         "judged on a holdout validation set) or a strategy name (that strategy with the baseline's "
                         "holdout verification): {strategies}; default: default,random")
    st.add_argument("--seeds", type=_seeds, default=list(range(10)),
                    help="count (10: seeds 0-9), list (0,3,5) or range (0-4) (default 10)")
    st.add_argument("--target-spearman", type=_unit_float, default=0.99,
                    help="target Spearman rho on never-seen rows, in (0, 1]")
    st.add_argument("--target-acc10", type=_unit_float,
                    help="also require this share of never-seen rows within +-10 %% (default: not required)")
    st.add_argument("--budget-samples", type=positive_int, default=1500, help="training samples budget per run")
    st.add_argument("--budget-hours", type=positive_float, help="device hours budget per run (default: none)")
    st.add_argument("--model", default="gbt", help="model of the non-default arms (default gbt): {models}")
    st.add_argument("--random-share", type=_share, default=None,
                    help="share of each batch drawn at random in the default and strategy arms (default: the "
                         "engine's, 0.5)")
    st.add_argument("--verification", choices=VERIFICATIONS, default=None,
                    help="the default arm's verification (default: the engine's, cv)")
    st.add_argument("--stop-rule", default=None,
                    help="the default arm's stop rule (default: the engine's, bound): {stop_rules}")
    st.add_argument("--test-size", type=positive_int, default=300,
                    help="live sources: never-seen test configurations per seed")
    st.add_argument("--batch-size", type=positive_int, default=50, help="configurations per iteration")
    st.add_argument("--initial-size", type=positive_int, help="initial design (default: the batch size)")
    st.add_argument("--validation-size", type=positive_int, default=500,
                    help="holdout validation set of the baseline and strategy arms")
    st.add_argument("--pool-size", type=positive_int, default=spec_defaults()["pool_size"],
                    help="candidates per query (default: the engine's, %(default)s)")
    st.add_argument("--acc10-at", type=positive_int, default=500, help="report ±10 %% accuracy at this many samples")
    return st


def _add_transfer_sources(c: argparse.ArgumentParser) -> None:
    tr = c.add_argument_group("transfer: every arm also runs as ARM+transfer, its ratio against ARM")
    tr.add_argument("--transfer-where", action="append", metavar="COL=VALUE",
                    help="replay: the table's rows where COL=VALUE are a source platform (repeatable)")
    tr.add_argument("--transfer-db", metavar="DB",
                    help="the other platforms' measurements of the family in DB are sources")
    tr.add_argument("--transfer-by", metavar="COL",
                    help="replay: each other value of the table's column COL is a source platform of its own (the "
                         "source is one value of it: --where COL=VALUE; the other filters apply to the sources too)")
    tr.add_argument("--transfer-shuffle", action="store_true",
                    help="shuffle the sources' latencies: an unrelated source (checks that transfer does no harm)")


def _add_transfer(sub: Any) -> None:
    t = sub.add_parser("transfer", help="leave-one-device-out transfer study on a many-device table",
                       description="Each device of a recorded table in turn is the new device, every other device a "
                                   "transfer source of its own: per target, the never-seen rho at a few sample "
                                   "counts with and without transfer and of the best source alone, and the samples "
                                   "and hours to a verified target (HELP's and NASFLAT's protocol).")
    t.add_argument("--csv", required=True, help="the table: parameter columns, a latency column, a device column")
    t.add_argument("--params", required=True, help="parameter columns, comma-separated")
    t.add_argument("--device-col", required=True, help="the column naming each row's device")
    t.add_argument("--targets", help="devices to learn in turn, comma-separated (default: every device)")
    t.add_argument("--where", action="append", metavar="COL=VALUE", help="keep only these rows (repeatable)")
    t.add_argument("--latency-col", default="latency_ms", help="the table's latency column")
    t.add_argument("--unit", default="ms", choices=["ms", "s", "us", "ns"], help="unit of the latency column")
    t.add_argument("--categorical", help="parameter columns to treat as categorical (default: inferred)")
    t.add_argument("--numeric", help="parameter columns to treat as numeric (default: inferred)")
    t.add_argument("--duplicates", default="error", choices=["error", "median", "min", "first"],
                   help="one configuration recorded twice for a device with different latencies")
    t.add_argument("--seeds", type=_seeds, default=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                   help="N (seeds 0..N-1), or a comma-separated list")
    t.add_argument("--target-spearman", type=_unit_float, default=0.98, help="target Spearman rho on never-seen rows")
    t.add_argument("--budget-samples", type=positive_int, default=100, help="training samples per campaign")
    t.add_argument("--batch-size", type=positive_int, default=5, help="configurations per iteration")
    t.add_argument("--initial-size", type=positive_int, default=5, help="initial design (the probe set)")
    t.add_argument("--at", default="5,10,20,50", help="sample counts the never-seen rho is reported at")
    t.add_argument("--jobs", type=int, default=-1, help="parallel seeds (-1 = all cores)")
    t.add_argument("--out", default="transfer-study", help="report directory (one study database per target)")
    t.add_argument("--json", action="store_true", help="print the rows as JSON")
    t.set_defaults(func=cmd_transfer)



def _add_reproduce(sub: Any) -> None:
    rp = sub.add_parser("reproduce", help="run a paper reproduction study by name (table3)")
    rp.add_argument("name", help="table3: block-level Spearman rho per predictor and family")
    rp.add_argument("--db", help="store with (or to receive) this CPU's measurements of the families")
    rp.add_argument("--families", default="mbconv,resv1,resv2", help="comma-separated block families: {families}")
    rp.add_argument("--samples", type=positive_int, default=1000, help="measurements per family (topped up live)")
    rp.add_argument("--no-live", action="store_true", help="use only what the store holds; never profile")
    rp.add_argument("--device", default="cpu", help="device of live measurements")
    from studies.paper import DEFAULT_TABLE

    rp.add_argument("--csv", default=DEFAULT_TABLE if os.path.isfile(DEFAULT_TABLE) else None,
                    help="recorded table, one row group per device (default: the shared TF-NAS table); '' for none")
    rp.add_argument("--seed", type=int, default=0, help="split seed")
    rp.add_argument("--out", default="study-report", help="output directory")
    rp.add_argument("--json", action="store_true", help="print the table as JSON")
    add_plugin_arg(rp, "block families or models")
    rp.set_defaults(func=cmd_reproduce)



def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help="write the report of a stored study")
    r.add_argument("--db", required=True, help="study database")
    r.add_argument("--study", help="study name (default: the only one)")
    r.add_argument("--baseline", default="random", help="arm the ratios are against")
    r.add_argument("--acc10-at", type=positive_int, default=None,
                   help="report ±10 %% accuracy at this many samples (default: the study's setting)")
    r.add_argument("--out", default="study-report", help="output directory")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=cmd_report)


def main(argv: Sequence[str] | None = None) -> int:
    from studies.replay import ReplayError
    from studies.study import StudyError
    from studies.transfer_study import TransferStudyError

    return run_command(build_parser(), argv, extra_errors=(StudyError, ReplayError, TransferStudyError),
                       interrupted="finished seeds are stored, run the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
