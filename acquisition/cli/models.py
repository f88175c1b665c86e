"""``fit`` and ``predict``: fit a latency predictor on stored measurements, predict with its bundle."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from typing import Any

from acquisition.cli._common import (
    DEFAULT_DB,
    CliError,
    add_plugin_arg,
    check_output,
    jobs,
    listed,
    load_plugins,
    non_negative_int,
    positive_float,
)
from profiler.files import atomic_write

__all__ = ["PREDICT_COLUMNS", "cmd_fit", "cmd_predict", "prediction_columns", "register"]


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit a model on one family's stored measurements, print its held-out metrics, export the bundle."""
    from acquisition.fitting import fit_and_export
    from acquisition.store import Store
    from surrogates import format_metrics, list_models

    load_plugins(args.plugin)
    from profiler.families import get_family

    get_family(args.family)
    if args.model != "auto" and args.model not in list_models():
        raise CliError(f"--model {args.model!r} is unknown: choose auto or one of {listed(list_models(), 50)}")
    check_output(args.out, "--out", db=args.db)
    if not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist: profile some measurements into it first")
    with Store(args.db) as store:
        res = fit_and_export(store, args.family, out=args.out, model=args.model, platform=args.platform,
                             seed=args.seed, select_budget_s=args.select_budget, n_jobs=args.jobs,
                             select_by=args.select_by)
    if res.comparison is not None:
        print(f"model selection ({res.comparison.common_folds}-fold, {res.comparison.elapsed_s:.0f} s):")
        print(res.comparison.table())
    ds = res.dataset
    assert ds is not None
    print(f"{res.model_name} on {args.family} (platform {ds.platform}, protocol {ds.protocol}): fitted on "
          f"{res.n_train} measurements in {res.fit_s:.1f} s")
    print(f"held-out test ({res.n_test}): {format_metrics(res.metrics)}")
    if res.noise is not None:
        if res.noise_rows == "test":
            print(f"noise ceiling: on the {res.noise.n} test blocks that were re-measured the model is within "
                  f"+-10 % for {100 * res.acc10_on_noise_rows:.1f} %; {res.noise.describe()}")
        else:
            print(f"noise ceiling (other blocks than the test's): {res.noise.describe()}")
    else:
        print("noise ceiling: unknown (`python -m acquisition remeasure` measures it)")
    print(f"bundle {os.path.abspath(args.out)}")
    return 0


PREDICT_COLUMNS = ["pred_ms", "p10_ms", "p90_ms", "log_std"]


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the latency of ``--config`` configurations (JSON lines) or of every row of ``--csv``."""
    # predicting takes milliseconds: OpenMP / BLAS thread pools would only add start-up and, on a busy machine,
    # threads spinning against each other (set before numpy and scikit-learn load their libraries)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import numpy as np

    from surrogates import load_bundle

    load_plugins(args.plugin)
    if (args.config is None) == (args.csv is None):
        raise CliError("give exactly one of --config JSON or --csv IN (with --out OUT)")
    if args.csv is not None and args.out is None:
        raise CliError("--csv needs --out OUT (a CSV file, or - for standard output)")
    if args.out not in (None, "-"):
        if args.csv is not None and os.path.realpath(args.out) == os.path.realpath(args.csv):
            raise CliError(f"--out {args.out!r} is the input file: choose another file")
        check_output(args.out, "--out")
    pred = load_bundle(args.bundle, lean=True)  # its lean form where it has one: no scikit-learn to import
    space = pred.family.space
    if args.config is not None:
        try:
            cfg = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise CliError(f"--config is not valid JSON ({exc.msg} at position {exc.pos})") from None
        cfgs = cfg if isinstance(cfg, list) else [cfg]
        if not cfgs or not all(isinstance(c, dict) for c in cfgs):
            raise CliError("--config must be a JSON object (or a list of objects) of field: value")
        configs = [pred.family.validate(space.coerce(c)) for c in cfgs]
        d = _predict_dist(_for_rows(pred, args.bundle, len(configs)), configs)
        lo, hi = d.interval(0.8)
        for i, c in enumerate(configs):
            print(json.dumps({**c, "pred_ms": float(d.latency[i]), "p10_ms": float(lo[i]), "p90_ms": float(hi[i]),
                              "log_std": float(d.std[i])}))
        return 0
    try:
        with open(args.csv, newline="") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--csv {args.csv!r} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    missing = [n for n in space.names if n not in header]
    if missing:
        raise CliError(f"--csv {args.csv!r} lacks column {missing[0]!r} (the bundle's family "
                       f"{pred.family.name!r} needs {', '.join(space.names)})")
    configs = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            configs.append(pred.family.validate(space.coerce({n: row[n] for n in space.names})))
        except ValueError as exc:
            raise CliError(f"--csv {args.csv!r} line {i}: {exc}") from None
    d = _predict_dist(_for_rows(pred, args.bundle, len(configs)), configs) if configs else None
    names = prediction_columns(header)
    renamed = [f"{c} as {n}" for c, n in zip(PREDICT_COLUMNS, names, strict=True) if c != n]
    values = (np.column_stack([d.latency, *d.interval(0.8), d.std]) if d is not None else np.zeros((0, 4)))
    with (contextlib.nullcontext(sys.stdout) if args.out == "-" else atomic_write(args.out)) as out:
        w = csv.DictWriter(out, header + names)
        w.writeheader()
        for row, v in zip(rows, values, strict=True):
            w.writerow({**row, **{c: f"{x:.6g}" for c, x in zip(names, v, strict=True)}})
    if renamed:
        print(f"--csv {args.csv!r} already has {', '.join(c for c in PREDICT_COLUMNS if c in header)}: kept as "
              f"they are; predictions written as {', '.join(renamed)}", file=sys.stderr)
    if args.out != "-":
        print(f"wrote {len(rows)} predictions to {os.path.abspath(args.out)}", file=sys.stderr)
    return 0


# up to this many rows predict from a bundle's lean form (surrogates.lean), beyond it from the model in full: the
# lean form saves the import of scikit-learn but walks trees in numpy, 2-3x slower a row than scikit-learn's
# compiled loop (docs/benchmarks/2026-12-07-fit-cost.md)
LEAN_ROWS = 2000


def _for_rows(pred: Any, bundle: str, n_rows: int) -> Any:
    from surrogates import load_bundle
    from surrogates.lean import LeanModel

    return load_bundle(bundle) if n_rows > LEAN_ROWS and isinstance(pred.model, LeanModel) else pred


def _predict_dist(pred: Any, configs: list[dict[str, Any]]) -> Any:
    """``pred.predict_dist(configs)`` on one thread: a prediction is milliseconds of work, and OpenMP threads of
    scikit-learn's boosting spinning against other processes made one configuration take seconds on a busy
    2-core machine (the environment variables set by :func:`cmd_predict` cover a fresh process; this also covers
    libraries loaded before it)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return pred.predict_dist(configs)


def prediction_columns(header: list[str]) -> list[str]:
    """The names ``predict --csv`` writes :data:`PREDICT_COLUMNS` under, never one of the input's ``header``: a
    name the input already has gets the prefix ``pred_`` (``p10_ms`` -> ``pred_p10_ms``), then a number if that
    is taken too (``pred_ms`` -> ``pred_ms_2``), so that no input column is ever overwritten."""
    taken = set(header)
    out = []
    for c in PREDICT_COLUMNS:
        name = c if c.startswith("pred_") or c not in taken else f"pred_{c}"
        base, k = name, 2
        while name in taken:
            name = f"{base}_{k}"
            k += 1
        taken.add(name)
        out.append(name)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``predict`` to the subparsers ``sub``."""
    p = sub.add_parser("fit", help="fit a latency predictor on stored measurements and export a bundle",
                       description="Fit a latency surrogate on the stored measurements of one family and platform "
                                   "(70/15/15 %% train/validation/test split), print its held-out test metrics and "
                                   "export it as a predictor bundle. --model auto compares the registered models "
                                   "by k-fold cross-validation within --select-budget seconds.")
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--family", required=True, help="block family: {families}")
    p.add_argument("--platform", default=None, help="platform id (needed when the family was measured on several)")
    p.add_argument("--model", default="auto", help="auto (default) or a model name: {models}")
    p.add_argument("--out", required=True, metavar="BUNDLE", help="predictor bundle to write")
    p.add_argument("--seed", type=non_negative_int, default=0, help="split and model seed, >= 0")
    p.add_argument("--select-budget", type=positive_float, default=120.0,
                   help="seconds for the --model auto comparison")
    p.add_argument("--jobs", type=jobs, default=None,
                   help="parallel jobs for the model comparison (joblib n_jobs: N > 0, or -1 for every core; "
                        "default 1)")
    p.add_argument("--select-by", dest="select_by", choices=("spearman", "acc10"), default="spearman",
                   help="what --model auto ranks by: spearman (rank, default) or acc10 (share within +-10 %%, for "
                        "latency budgets)")
    add_plugin_arg(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="predict latencies with a predictor bundle",
                       description="Predict the latency (ms) of configurations with a bundle: one or more from "
                                   "--config JSON, or every row of --csv IN written to --out OUT with pred_ms, "
                                   "p10_ms, p90_ms (80 %% interval) and log_std columns added. Input columns are "
                                   "never overwritten: a prediction whose name the input already has is written "
                                   "as pred_NAME (a measurements export's p10_ms and p90_ms stay the measured "
                                   "ones; the predicted interval is pred_p10_ms, pred_p90_ms).")
    p.add_argument("--bundle", required=True, help="predictor bundle (from `fit` or `run`)")
    p.add_argument("--config", default=None, metavar="JSON", help='e.g. \'{"input_hw": 56, "cin": 24, ...}\'')
    p.add_argument("--csv", default=None, metavar="IN", help="CSV with one configuration per row")
    p.add_argument("--out", default=None, metavar="OUT", help="output CSV (with --csv), or - for standard output")
    add_plugin_arg(p, "the bundle's family")
    p.set_defaults(func=cmd_predict)
