"""``run`` and ``report``: acquisition campaigns and their cost report."""

from __future__ import annotations

import argparse
import os
from typing import Any

from acquisition.cli._common import (
    DEFAULT_DB,
    CliError,
    add_device_args,
    add_plugin_arg,
    check_output,
    device_from_args,
    listed,
    load_plugins,
)
from acquisition.cli._fleet import add_fleet_args, check_fleet_args
from acquisition.cli.settings import SETTING_NAMES, add_setting_args

__all__ = ["DEFAULT_RUN", "RUN_FIELDS", "cmd_report", "cmd_run", "register", "run_defaults", "run_spec"]

# the CampaignSpec fields run's flags set (flag dest -> field)
RUN_FIELDS = {name: name for name in ("family", *SETTING_NAMES, "fidelity", "transfer")}
# where run's defaults differ from CampaignSpec's; run_defaults() merges the two: the one set of defaults a new
# campaign gets, whatever other flags are given, and what `run --help` shows
DEFAULT_RUN = {"family": "mbconv", "target_spearman": 0.98, "budget_hours": 0.12, "budget_samples": 400,
               "transfer": "auto"}


def run_defaults() -> dict[str, Any]:
    """Every campaign field's default for ``run``: :data:`DEFAULT_RUN` over :class:`CampaignSpec`'s defaults."""
    from acquisition.campaign import spec_defaults

    return {**spec_defaults(), **DEFAULT_RUN}


def run_spec(args: argparse.Namespace, stored: dict[str, Any] | None) -> Any:
    """The validated :class:`CampaignSpec` ``run`` runs: a stored campaign's spec with the flags given on top
    (resume), or :func:`run_defaults` with the flags given on top (a new campaign). A flag not given is ``None``
    in ``args``, so giving one flag never changes another's default."""
    from acquisition.campaign import CampaignSpec

    given = {RUN_FIELDS[f]: getattr(args, f) for f in RUN_FIELDS if getattr(args, f) is not None}
    name = args.campaign or "default"
    defaults = run_defaults()
    base = stored["spec"] if stored is not None else {k: defaults[k] for k in RUN_FIELDS.values()}
    values = {**base, **given}
    spec = CampaignSpec(name=name, **{k: v for k, v in values.items() if k != "name"})
    return spec.validate()  # every argument checked before the database is opened for writing


def cmd_run(args: argparse.Namespace) -> int:
    """Run (or resume) a campaign, export its bundle and print its summary."""
    from acquisition._lock import RunLock
    from acquisition.engine import run_campaign
    from acquisition.noise import noise_ceiling
    from acquisition.store import Store
    from profiler.families import get_family
    from profiler.worker import Profiler

    load_plugins(args.plugin)
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
    name = args.campaign or "default"
    on_fleet = check_fleet_args(args)
    stored = None
    if os.path.isfile(args.db):
        with Store(args.db, readonly=True) as ro:
            stored = ro.get_campaign(name) or (_fleet_campaign(ro, name) if on_fleet else None)
    spec = run_spec(args, stored)
    family = get_family(spec.family)
    if on_fleet:
        bundle_dir = args.bundle or os.path.dirname(os.path.abspath(args.db))
        if not os.path.isdir(bundle_dir) or not os.access(bundle_dir, os.W_OK):
            raise CliError(f"--bundle {bundle_dir!r}: with --ray-address it is the folder each platform's "
                           "CAMPAIGN.bundle is written to, and it must be a writable folder")
    else:
        device = device_from_args(args)
        device.check_available()
        spec.device = device.spec
        bundle = args.bundle or os.path.join(os.path.dirname(os.path.abspath(args.db)), f"{name}.bundle")
        check_output(bundle, "--bundle", db=args.db)
    if args.prior_bundle and spec.transfer == "none":
        raise CliError(f"--prior-bundle needs transfer: campaign {name!r} was created with transfer none")
    bundles = _bundle_sources(args.prior_bundle, family)  # checked before anything is written
    if platforms:
        _check_platforms(args.db, family, platforms)
    if on_fleet:
        return _run_fleet(args, spec, family, bundles, platforms, bundle_dir)
    with RunLock(args.db), Store(args.db) as store, Profiler(device) as prof:
        sources = _transfer_sources(store, spec, family, prof.platform_id, platforms) + bundles
        res = run_campaign(store, spec, prof, family, progress=not args.no_progress, bundle_path=bundle,
                           sources=sources, fit_workers=args.fit_workers or 0)
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


def _fleet_campaign(store: Any, name: str) -> dict[str, Any] | None:
    """A fleet run's stored campaign ``NAME-PLATFORM`` (its settings are the run's, resumed like ``NAME``'s)."""
    import re

    for c in store.campaigns():
        if re.fullmatch(re.escape(name) + r"-[0-9a-z\-]{6,40}", c["name"]):
            return store.get_campaign(c["name"])
    return None


def _run_fleet(args: argparse.Namespace, spec: Any, family: Any, bundles: list[Any], platforms: list[str],
               bundle_dir: str) -> int:
    """``run --ray-address``: one campaign per platform of the cluster's devices, all at once."""
    from acquisition._lock import RunLock
    from acquisition.cli._fleet import open_fleet, print_throughput, ray_connection
    from acquisition.fleet_run import run_fleet
    from acquisition.noise import noise_ceiling
    from acquisition.store import Store

    with ray_connection(args) as specs, RunLock(args.db), Store(args.db) as store, \
            open_fleet(specs, progress=not args.no_progress) as fleet:
        results = run_fleet(store, spec, fleet, family, bundle_dir=bundle_dir, progress=not args.no_progress,
                            sources=bundles if spec.transfer != "none" else [], transfer_platforms=platforms,
                            fit_workers=args.fit_workers)
        db_path = os.path.abspath(store.path)
        for plat, res in results.items():
            _print_summary(res, db_path)
            _print_sources(res, store.campaign_sources(res.name))
            if res.fleet_error:
                print(f"  stopped: {res.fleet_error}")
            ceiling = noise_ceiling(store, family.name, platform=plat, protocol=fleet.pools[plat].protocol.id)
            if ceiling is not None:
                print(f"  noise ceiling: {ceiling.describe()}")
        print_throughput(fleet)
    return 1 if any(r.fleet_error for r in results.values()) else 0


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
        last = res.iterations[-1]
        how = {"cv": f"cross-validated on {last.n_verify} randomly drawn training rows",
               "prequential": f"on {last.n_verify} randomly drawn rows, each predicted before it was measured"
               }.get(s.verification, f"on {res.n_validation} holdout validation rows")
        lo = "" if last.spearman_lo is None or last.spearman_lo != last.spearman_lo else (
            f", 95 % lower bound {last.spearman_lo:.4f}")
        acc10 = f" (target {100 * s.target_acc10:g} %)" if s.target_acc10 is not None else ""
        mape = f" (target <= {s.target_mape:g} %)" if s.target_mape is not None else ""
        print(f"  rho {m['spearman']:.4f}{lo} (target {s.target_spearman}, stop rule {s.stop_rule}) {how}, MAPE "
              f"{m['mape']:.2f} %{mape}, within +-10 % {100 * m['acc10']:.1f} %{acc10}")
    elif s.verification != "holdout":
        print(f"  not verified yet: fewer randomly drawn training rows than cross-validation needs (target rho "
              f"{s.target_spearman})")
    val = (f" (validation {res.validation_hours:.4f} h, {res.n_validation} blocks)" if res.n_validation else "")
    print(f"  {res.n_train} training samples; device time {res.profiling_hours:.4f} h in all{val}; "
          f"{len(res.iterations)} iterations")
    f = res.fidelity
    if f and f.get("mode") == "auto" and f["cheap"]["rows"]:
        noise = f"{100 * f['noise']:.1f} %" if f["noise"] == f["noise"] else "unknown"
        print(f"  fidelity: {f['cheap']['rows']} cheap rows ({f['cheap']['median_cost_s']:.3f} s each), "
              f"{f['full']['rows']} full ({f['full']['median_cost_s']:.3f} s each); {f['pairs']} probes: offset "
              f"{100 * f['offset']:+.1f} %, cheap noise {noise}")
    floor = getattr(res, "noise_floor", None)
    if floor:
        from acquisition.campaign import describe_floor

        hint = " (`python -m acquisition doctor` measures it)" if floor.get("source") == "none" else ""
        print(f"  noise floor: {describe_floor(floor)}{hint}")
    for w in getattr(res, "noise_warnings", None) or []:
        print(f"  warning: {w}")
    d = res.device
    how = "pipelined: the next batch chosen while the device measured" if d.pipelined else "one step after the other"
    print(f"  engine overhead (fit, evaluate, query, export) {res.engine_s:.1f} s; the device waited for it "
          f"{d.idle_s:.1f} s = {100 * d.idle_share:.1f} % of {d.wall_s:.1f} s ({how}; {res.wall_s:.0f} s wall "
          "with the export)")
    print(f"  database {db_path}")
    if res.bundle:
        print(f"  predictor bundle {res.bundle}")


def cmd_report(args: argparse.Namespace) -> int:
    """Write the cost report (markdown, JSON or HTML, and PNG plots) of a database's campaigns."""
    from acquisition.report import write_report
    from acquisition.store import Store

    load_plugins(args.plugin)  # a plug-in family's bundle loads only where the family is registered
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
                           f"(campaigns: {listed(names)})")
        files = write_report(store, out, fmt=args.format, campaign=args.campaign)
    for f in files:
        print(os.path.abspath(f))
    return 0



def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``report`` to the subparsers ``sub``."""
    _add_run(sub)
    _add_report(sub)


def _add_run(sub: argparse._SubParsersAction) -> None:
    d = run_defaults()
    p = sub.add_parser("run", help="run (or resume) an acquisition campaign: fit, query, profile until the target",
                       description="Run an acquisition campaign: profile an initial design, then fit -> verify -> "
                                   "query -> profile until the verified Spearman target is met on --confirm "
                                   "consecutive iterations or a budget is spent; export the predictor bundle "
                                   "(fitted on everything measured). The defaults below are the same whatever "
                                   "other flags are given (with none: mbconv on this CPU, target 0.98, at most "
                                   "0.12 device hours or 400 samples). A campaign that exists is resumed with its "
                                   "stored settings (only budgets may change). With --ray-address the blocks are "
                                   "measured on a Ray cluster's devices: one campaign per platform, all at once, "
                                   "named CAMPAIGN-PLATFORM when there are several.")
    p.add_argument("--family", default=None, help=f"block family (default {d['family']}): {{families}}")
    add_device_args(p)
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--campaign", default=None, help="campaign name (default 'default')")
    add_setting_args(p, d)
    p.add_argument("--transfer", nargs="+", default=None, metavar="auto|none|PLATFORM",
                   help="learn from other platforms' measurements of the family in this database: auto (every "
                        "one with enough rows), none, or platform ids (default auto)")
    p.add_argument("--prior-bundle", dest="prior_bundle", action="append", default=[], metavar="PATH",
                   help="an exported bundle of the family on another platform to learn from (repeatable; default "
                        "none)")
    p.add_argument("--fidelity", default=None, choices=("auto", "full"),
                   help="auto: quick measurements (a short adaptive protocol) while the model is far off, the "
                        "offset to full fidelity learned from probes; full: every block at full fidelity (default "
                        f"{d['fidelity']})")
    p.add_argument("--bundle", default=None,
                   help="where to export the predictor (default CAMPAIGN.bundle next to the database; with "
                        "--ray-address, the folder of every platform's CAMPAIGN.bundle)")
    add_fleet_args(p, fits=True)
    add_plugin_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="cost report: profiling hours, overhead, learning curves (PNG)",
                       description="Write a cost report of a database: profiling hours by campaign, platform, "
                                   "family and activity, cost per sample, engine overhead share, and PNG plots of "
                                   "each campaign's learning curve and predicted vs measured validation latency.")
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--campaign", default=None, help="only this campaign (default: every campaign)")
    p.add_argument("--format", choices=("md", "json", "html"), default="md", help="report format")
    p.add_argument("--out", default="report", help="output directory")
    add_plugin_arg(p, "the campaigns' block families or models")
    p.set_defaults(func=cmd_report)
