"""``python -m acquisition``: profile blocks, inspect the store, export measurements.

Subcommands: ``profile``, ``status``, ``measurements``, ``fit``, ``predict``. Bad input gets a one-line error
naming the bad value and
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


def _int_arg(text: str, ok, what: str) -> int:
    """An integer argument that satisfies ``ok``; otherwise an argparse error saying it ``must be <what>``."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
    return v


def _positive_int(text: str) -> int:
    return _int_arg(text, lambda v: v > 0, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _int_arg(text, lambda v: v >= 0, "a non-negative integer")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return v


def _jobs(text: str) -> int:
    return _int_arg(text, lambda v: v > 0 or v == -1, "a positive integer or -1")


def add_device_args(p: argparse.ArgumentParser, default: str = "auto", threads: int | None = None) -> None:
    """--device, --threads, --dtype and --input-batch: what a block runs on, which together name the platform."""
    p.add_argument("--device", default=default, help=f"auto | cpu | cuda | cuda:N (default {default})")
    p.add_argument("--threads", type=_positive_int, default=threads, help="CPU threads (cpu only, default 1)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="dtype blocks and inputs are converted to (default float32); part of the platform")
    p.add_argument("--input-batch", dest="input_batch", type=_positive_int, default=1,
                   help="batch size of each block's input tensor (default 1); part of the platform")


def device_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~profiler.devices.Device` that :func:`add_device_args`' options describe."""
    from profiler.devices import parse_device


    return parse_device(args.device, threads=args.threads, dtype=args.dtype, batch_size=args.input_batch)


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
    from profiler.families import get_family
    from profiler.protocol import AdaptiveProtocol, FixedProtocol
    from profiler.worker import Profiler

    _load_plugins(args.plugin)
    family = get_family(args.family)
    device = device_from_args(args)
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


# -- remeasure ---------------------------------------------------------------------------------------------------
def cmd_remeasure(args: argparse.Namespace) -> int:
    from acquisition.noise import remeasure
    from acquisition.store import Store
    from profiler.families import get_family

    _load_plugins(args.plugin)
    family = get_family(args.family)
    if not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist: profile some measurements into it first")
    device = device_from_args(args)
    device.check_available()
    with Store(args.db) as store:
        ceiling = remeasure(store, device, family, args.n, seed=args.seed, platform=args.platform,
                            progress=not args.no_progress)
    print(f"{family.name}: {ceiling.describe()}; Spearman {ceiling.spearman:.4f} between the two runs")
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
            print(f"  {p['id']}  {p['device']}  {p['label']}, torch {p['torch']}")
    if st["families"]:
        header = ("platform", "family", "ok", "failed", "unstable", "hours")
        rows = [(g["platform"], g["family"], str(g["ok"]), str(g["failed"]), str(g["unstable"]),
                 f"{g['profiling_hours']:.4f}") for g in st["families"]]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    if st["campaigns"]:
        print("campaigns:")
        for c in st["campaigns"]:
            rho = "-" if c["spearman"] is None else f"{c['spearman']:.4f}"
            print(f"  {c['name']}  {c['family']}  {c['state']}  {c['strategy']}+{c['model']}  {c['samples']} samples  "
                  f"{c['iterations']} iterations  rho {rho} (target {c['target_spearman']})")
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


# -- fit ---------------------------------------------------------------------------------------------------------
def cmd_fit(args: argparse.Namespace) -> int:
    from acquisition.fitting import fit_and_export
    from acquisition.store import Store
    from surrogates import format_metrics, list_models

    _load_plugins(args.plugin)
    from profiler.families import get_family

    get_family(args.family)
    if args.model != "auto" and args.model not in list_models():
        raise CliError(f"--model {args.model!r} is unknown: choose auto or one of {', '.join(list_models())}")
    _check_output(args.out, "--out", db=args.db)
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


def _check_output(path: str, flag: str, *, db: str | None = None) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if db is not None:
        db_files = {os.path.realpath(db + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
        if os.path.realpath(path) in db_files:
            raise CliError(f"{flag} {path!r} is the database itself: choose another file")
    if os.path.isdir(path) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise CliError(f"{flag} {path!r} cannot be written")


# -- predict -----------------------------------------------------------------------------------------------------
PREDICT_COLUMNS = ["pred_ms", "p10_ms", "p90_ms", "log_std"]


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from surrogates import load_bundle

    _load_plugins(args.plugin)
    if (args.config is None) == (args.csv is None):
        raise CliError("give exactly one of --config JSON or --csv IN (with --out OUT)")
    if args.csv is not None and args.out is None:
        raise CliError("--csv needs --out OUT (a CSV file, or - for standard output)")
    if args.out not in (None, "-"):
        if args.csv is not None and os.path.realpath(args.out) == os.path.realpath(args.csv):
            raise CliError(f"--out {args.out!r} is the input file: choose another file")
        _check_output(args.out, "--out")
    pred = load_bundle(args.bundle)
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
        d = pred.predict_dist(configs)
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
    d = pred.predict_dist(configs) if configs else None
    out_cols = header + [c for c in PREDICT_COLUMNS if c not in header]
    values = (np.column_stack([d.latency, *d.interval(0.8), d.std]) if d is not None else np.zeros((0, 4)))
    with (contextlib.nullcontext(sys.stdout) if args.out == "-" else _atomic_text(args.out)) as out:
        w = csv.DictWriter(out, out_cols)
        w.writeheader()
        for row, v in zip(rows, values, strict=True):
            w.writerow({**row, **{c: f"{x:.6g}" for c, x in zip(PREDICT_COLUMNS, v, strict=True)}})
    if args.out != "-":
        print(f"wrote {len(rows)} predictions to {os.path.abspath(args.out)}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _atomic_text(path: str):
    """Write a text file under a temporary name and rename it into place only when everything succeeded."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -- run ---------------------------------------------------------------------------------------------------------
RUN_FIELDS = {"family": "family", "strategy": "strategy", "model": "model", "target_spearman": "target_spearman",
              "target_acc10": "target_acc10", "target_mape": "target_mape", "budget_hours": "budget_hours",
              "budget_samples": "budget_samples", "batch_size": "batch_size", "initial_size": "initial_size",
              "validation_size": "validation_size", "pool_size": "pool_size", "seed": "seed", "confirm": "confirm",
              "verification": "verification", "folds": "folds", "random_share": "random_share",
              "fidelity": "fidelity", "transfer": "transfer"}
# run's defaults, whatever other flags are given (CampaignSpec's defaults for everything not named here)
DEFAULT_RUN = {"family": "mbconv", "target_spearman": 0.98, "budget_hours": 0.12, "budget_samples": 400,
               "transfer": "auto"}


def cmd_run(args: argparse.Namespace) -> int:
    from acquisition._lock import RunLock
    from acquisition.campaign import CampaignSpec
    from acquisition.engine import run_campaign
    from acquisition.noise import noise_ceiling
    from acquisition.store import Store
    from profiler.families import get_family
    from profiler.worker import Profiler

    _load_plugins(args.plugin)
    platforms: list[str] = []
    if args.transfer is not None:  # auto | none | PLATFORM ... (the spec records auto or none)
        words = [w for item in args.transfer for w in item.split(",") if w]
        if not words or (len(words) > 1 and ({"auto", "none"} & set(words))):
            raise CliError(f"--transfer {' '.join(args.transfer)!r} is not allowed: expected auto, none or "
                           "platform ids")
        platforms = [] if words[0] in ("auto", "none") else words
        args.transfer = "none" if words == ["none"] else "auto"
        if args.transfer == "none" and args.prior_bundle:
            raise CliError("--prior-bundle needs transfer: drop --transfer none")
    given = {f: getattr(args, f) for f in RUN_FIELDS if getattr(args, f) is not None}
    name = args.campaign or "default"
    stored = None
    if os.path.isfile(args.db):
        with Store(args.db, readonly=True) as ro:
            stored = ro.get_campaign(name)
    values = {**stored["spec"], **given} if stored is not None else {**DEFAULT_RUN, **given}
    spec = CampaignSpec(name=name, **{k: v for k, v in values.items() if k != "name"})
    spec.validate()  # every argument checked before the database is opened for writing
    family = get_family(spec.family)
    device = device_from_args(args)
    device.check_available()
    spec.device = device.spec
    bundle = args.bundle or os.path.join(os.path.dirname(os.path.abspath(args.db)), f"{name}.bundle")
    _check_output(bundle, "--bundle", db=args.db)
    if args.prior_bundle and spec.transfer == "none":
        raise CliError(f"--prior-bundle needs transfer: campaign {name!r} was created with transfer none")
    bundles = _bundle_sources(args.prior_bundle, family)  # checked before anything is written
    if platforms:
        _check_platforms(args.db, family, platforms)
    with RunLock(args.db), Store(args.db) as store, Profiler(device) as prof:
        sources = _transfer_sources(store, spec, family, prof.platform_id, platforms) + bundles
        res = run_campaign(store, spec, prof, family, progress=not args.no_progress, bundle_path=bundle,
                           sources=sources)
        used = store.campaign_sources(name)
        db_path = os.path.abspath(store.path)
        ceiling = noise_ceiling(store, family.name, platform=prof.platform_id, protocol=prof.protocol.id)
    _print_summary(res, db_path)
    _print_sources(res, used)
    if ceiling is not None:
        print(f"  noise ceiling: {ceiling.describe()}")
    else:
        print(f"  noise ceiling: not measured (`python -m acquisition remeasure --family {family.name}` re-measures "
              "stored blocks in a fresh process)")
    return 0


def _bundle_sources(paths: list[str], family: Any) -> list[Any]:
    from acquisition.transfer import TransferError, bundle_source

    try:
        return [bundle_source(p, family) for p in paths]
    except TransferError as e:
        raise CliError(str(e)) from None


def _check_platforms(db: str, family: Any, platforms: list[str]) -> None:
    """Named transfer platforms must hold measurements of the family in the database (checked read-only)."""
    from acquisition.store import Store
    from acquisition.transfer import TransferError, store_sources

    if not os.path.isfile(db):
        raise CliError(f"--transfer {' '.join(platforms)}: there is no database {db!r} to take sources from")
    with Store(db, readonly=True) as store:
        try:
            store_sources(store, family, "", platforms)
        except TransferError as e:
            raise CliError(str(e)) from None


def _transfer_sources(store: Any, spec: Any, family: Any, platform: str, platforms: list[str]) -> list[Any]:
    """The store's sources a run learns from: every other platform with enough rows of the family, or those
    named; none with ``transfer`` none."""
    from acquisition.transfer import TransferError, store_sources

    if spec.transfer == "none":
        return []
    try:
        return store_sources(store, family, platform, platforms or "auto")
    except TransferError as e:
        raise CliError(str(e)) from None


def _print_sources(res: Any, sources: list[dict[str, Any]]) -> None:
    if res.spec.transfer == "none":
        return
    if not sources:
        print("  transfer: no source (no other platform in the store has this family's measurements)")
        return
    last = res.iterations[-1] if res.iterations else None
    model = last.model if last is not None else None
    gain = last.transfer_gain if last is not None else None
    print(f"  transfer: {sum(s['used'] for s in sources)} of {len(sources)} source(s) used; the final model "
          + ("stands on them" if model and model.startswith("transfer:") else "does not use them")
          + (f" (out-of-fold rho {gain:+.4f} against no transfer)" if gain is not None else ""))
    for s in sources:
        agree = "n/a" if s["agreement"] is None else f"{s['agreement']:.3f}"
        print(f"    {s['name']}: {s['rows']} rows, agreement on the probe set {agree}, "
              + ("used" if s["used"] else f"ignored ({s['reason']})"))


def _print_summary(res: Any, db_path: str) -> None:
    s = res.spec
    state = {"met": "target met", "budget": "budget spent, target not met", "stopped": "stopped",
             "failed": "failed (too few ok measurements)",
             "exhausted": "every candidate profiled, target not met"}.get(res.state, res.state)
    m = res.metrics
    print(f"campaign {res.name}: {state}")
    if m and res.iterations:
        how = (f"cross-validated on {res.iterations[-1].n_verify} randomly drawn training rows"
               if s.verification == "cv" else f"on {res.n_validation} holdout validation rows")
        print(f"  rho {m['spearman']:.4f} (target {s.target_spearman}) {how}, MAPE {m['mape']:.2f} %, "
              f"within +-10 % {100 * m['acc10']:.1f} %")
    val = (f" (validation {res.validation_hours:.4f} h, {res.n_validation} blocks)" if res.n_validation else "")
    print(f"  {res.n_train} training samples; device time {res.profiling_hours:.4f} h in all{val}; "
          f"{len(res.iterations)} iterations")
    f = res.fidelity
    if f and f.get("mode") == "auto" and f["cheap"]["rows"]:
        noise = f"{100 * f['noise']:.1f} %" if f["noise"] == f["noise"] else "unknown"
        print(f"  fidelity: {f['cheap']['rows']} cheap rows ({f['cheap']['median_cost_s']:.3f} s each), "
              f"{f['full']['rows']} full ({f['full']['median_cost_s']:.3f} s each); {f['pairs']} probes: offset "
              f"{100 * f['offset']:+.1f} %, cheap noise {noise}")
    print(f"  engine overhead (fit, evaluate, query, export) {res.engine_s:.1f} s = "
          f"{100 * res.overhead_share:.1f} % of {res.wall_s:.0f} s wall")
    print(f"  database {db_path}")
    if res.bundle:
        print(f"  predictor bundle {res.bundle}")


# -- report ------------------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from acquisition.report import write_report
    from acquisition.store import Store

    if not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist")
    out = args.out or "report"
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out {out!r} exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise CliError(f"--out {out!r} cannot be created")
    with Store(args.db, readonly=True) as store:
        if args.campaign is not None and store.get_campaign(args.campaign) is None:
            names = [c["name"] for c in store.campaigns()]
            raise CliError(f"--campaign {args.campaign!r} is not in {args.db} "
                           f"(campaigns: {', '.join(names) or 'none'})")
        files = write_report(store, out, fmt=args.format, campaign=args.campaign)
    for f in files:
        print(os.path.abspath(f))
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
    add_device_args(p)
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

    p = sub.add_parser("remeasure", help="measure stored blocks again in a fresh process: the noise ceiling",
                       description="Draw N stored ok measurements of a family at random, measure each again with "
                                   "the same protocol in a fresh worker process (stored apart, as repeats; charged "
                                   "as noise_profile), and print how often the two agree within +-10 %%: the "
                                   "ceiling of any model's +-10 %% accuracy. fit, run and report show it beside the "
                                   "model's accuracy.")
    p.add_argument("--family", default="mbconv", help="block family (default mbconv)")
    p.add_argument("--n", type=_positive_int, default=100, help="measurements to repeat (default 100)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    add_device_args(p)
    p.add_argument("--platform", default=None, help="platform id (needed when the family was measured on several)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the draw, >= 0 (default 0)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it may register block families); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_remeasure)

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

    p = sub.add_parser("fit", help="fit a latency predictor on stored measurements and export a bundle",
                       description="Fit a latency surrogate on the stored measurements of one family and platform "
                                   "(70/15/15 %% train/validation/test split), print its held-out test metrics and "
                                   "export it as a predictor bundle. --model auto compares the registered models "
                                   "by k-fold cross-validation within --select-budget seconds.")
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.add_argument("--family", required=True, help="block family")
    p.add_argument("--platform", default=None, help="platform id (needed when the family was measured on several)")
    p.add_argument("--model", default="auto", help="auto (default) or a model name: " + _model_names())
    p.add_argument("--out", required=True, metavar="BUNDLE", help="predictor bundle to write")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="split and model seed, >= 0 (default 0)")
    p.add_argument("--select-budget", type=_positive_float, default=120.0,
                   help="seconds for the --model auto comparison (default 120)")
    p.add_argument("--jobs", type=_jobs, default=None,
                   help="parallel jobs for the model comparison (joblib n_jobs: N > 0, or -1 for every core)")
    p.add_argument("--select-by", dest="select_by", choices=("spearman", "acc10"), default="spearman",
                   help="what --model auto ranks by: spearman (rank, default) or acc10 (share within +-10 %%, for "
                        "latency budgets)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it may register block families or models); repeatable")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="predict latencies with a predictor bundle",
                       description="Predict the latency (ms) of configurations with a bundle: one or more from "
                                   "--config JSON, or every row of --csv IN written to --out OUT with pred_ms, "
                                   "p10_ms, p90_ms (80 %% interval) and log_std columns added.")
    p.add_argument("--bundle", required=True, help="predictor bundle (from `fit` or `run`)")
    p.add_argument("--config", default=None, metavar="JSON", help='e.g. \'{"input_hw": 56, "cin": 24, ...}\'')
    p.add_argument("--csv", default=None, metavar="IN", help="CSV with one configuration per row")
    p.add_argument("--out", default=None, metavar="OUT", help="output CSV (with --csv), or - for standard output")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it may register the bundle's family); repeatable")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("run", help="run (or resume) an acquisition campaign: fit, query, profile until the target",
                       description="Run an acquisition campaign: profile an initial design, then fit -> verify -> "
                                   "query -> profile until the verified Spearman target is met on --confirm "
                                   "consecutive iterations or a budget is spent; export the predictor bundle "
                                   "(fitted on everything measured). With no arguments: the embedded default "
                                   "(mbconv on this CPU, target 0.98, at most 0.12 device hours or 400 samples). A "
                                   "campaign that exists is resumed with its stored settings (only budgets may "
                                   "change).")
    p.add_argument("--family", default=None, help="block family (default mbconv)")
    add_device_args(p)
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.add_argument("--campaign", default=None, help="campaign name (default 'default')")
    p.add_argument("--target-spearman", dest="target_spearman", type=float, default=None,
                   help="verified Spearman target in (0, 1] (default 0.98)")
    p.add_argument("--target-acc10", dest="target_acc10", type=float, default=None,
                   help="also require this share of validation predictions within +-10 %% (0, 1]")
    p.add_argument("--target-mape", dest="target_mape", type=float, default=None, help="also require MAPE (%%) <= this")
    p.add_argument("--budget-hours", dest="budget_hours", type=float, default=None,
                   help="budget in device hours, the campaign's whole bill (default 0.12)")
    p.add_argument("--budget-samples", dest="budget_samples", type=int, default=None,
                   help="training samples budget (default 400)")
    p.add_argument("--strategy", default=None, help="query strategy (default representative): " + _strategy_names())
    p.add_argument("--model", default=None,
                   help="surrogate model (default gbt; auto: re-chosen each iteration among gbt and linear by "
                        "out-of-fold rho): " + _model_names())
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="configs per iteration (20)")
    p.add_argument("--initial-size", dest="initial_size", type=int, default=None, help="initial design size (20)")
    p.add_argument("--verification", default=None, choices=("cv", "holdout"),
                   help="cv (default): judge the model by cross-validation on the randomly drawn training rows, no "
                        "device time spent on it; holdout: profile a random validation set first")
    p.add_argument("--folds", type=int, default=None, help="folds of the cross-validation committee (5)")
    p.add_argument("--random-share", dest="random_share", type=float, default=None,
                   help="share of every batch drawn at random; the strategy picks the rest (0.5)")
    p.add_argument("--transfer", nargs="+", default=None, metavar="auto|none|PLATFORM",
                   help="learn from other platforms' measurements of the family in this database: auto (default: "
                        "every one with enough rows), none, or platform ids")
    p.add_argument("--prior-bundle", dest="prior_bundle", action="append", default=[], metavar="PATH",
                   help="an exported bundle of the family on another platform to learn from (repeatable)")
    p.add_argument("--fidelity", default=None, choices=("auto", "full"),
                   help="auto (default): quick measurements (a short adaptive protocol) while the model is far "
                        "off, the offset to full fidelity learned from probes; full: every block at full fidelity")
    p.add_argument("--validation-size", dest="validation_size", type=int, default=None,
                   help="validation set size with --verification holdout (200)")
    p.add_argument("--pool-size", dest="pool_size", type=int, default=None, help="candidates per query (4000)")
    p.add_argument("--confirm", type=int, default=None, help="consecutive iterations meeting the target (2)")
    p.add_argument("--seed", type=int, default=None, help="seed, >= 0 (default 0)")
    p.add_argument("--bundle", default=None,
                   help="where to export the predictor (default CAMPAIGN.bundle next to the database)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (block families, models or strategies); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="cost report: profiling hours, overhead, learning curves (PNG)",
                       description="Write a cost report of a database: profiling hours by campaign, platform, "
                                   "family and activity, cost per sample, engine overhead share, and PNG plots of "
                                   "each campaign's learning curve and predicted vs measured validation latency.")
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.add_argument("--campaign", default=None, help="only this campaign")
    p.add_argument("--format", choices=("md", "json", "html"), default="md", help="report format (default md)")
    p.add_argument("--out", default=None, help="output directory (default ./report)")
    p.set_defaults(func=cmd_report)
    return parser


def _strategy_names() -> str:
    from acquisition.strategies import list_strategies

    return ", ".join(list_strategies())


def _model_names() -> str:
    from surrogates import list_models

    return ", ".join(list_models())


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
    from profiler.worker import ProfilerError

    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    prog = f"{parser.prog} {args.command}"
    try:
        return int(args.func(args) or 0)
    except (*user_errors(), *extra_errors) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ProfilerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv, interrupted="every measurement finished so far is stored")
