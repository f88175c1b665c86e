"""``python -m nas``: evaluate network latency from bundles, profile a space's blocks, search, compare with HIL.

Subcommands (one small function each):

- ``evaluate``: measure ``--networks`` random networks of ``--space`` whole on the device (stored in ``--db``),
  calibrate the bundles' Σ on the first ``--calibrate`` of them, print Pearson r, Spearman ρ, MAPE and ±10 %
  (raw and calibrated) on the others, write ``evaluation.png`` and ``calibration.json`` to ``--out``;
- ``blocks``: profile the distinct blocks of ``--networks`` random networks of ``--space`` (training data for
  bundles that know the part of the block space a search asks about);
- ``search``: Optuna search (``--objective bals`` with TPE, ``pareto`` with NSGA-II) with latency from the
  bundles (``--latency-source surrogate``) or measured (``hil``), resumable in ``--storage``; writes
  ``pareto.png`` and ``search.json`` to ``--out``;
- ``compare``: the same search guided by HIL and by the surrogate; W_overall, W_optimal, HNQ; ``compare.png``;
- ``predict``: the latency of published models (``--model torchvision:resnet50``, ``timm:...``) or of network
  specs (``--network net.json``): blocks from ``--bundle`` s, glue measured once on the device (``--measure-glue``)
  and read from ``--db``; median, 80 % interval and the share predicted by block bundles (``coverage``).

Bad input gets a one-line error naming the value and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from acquisition.cli import (
    CliError,
    Parser,
    add_device_args,
    add_plugin_arg,
    device_from_args,
    load_plugins,
    run_command,
)
from acquisition.cli import non_negative_int as _non_negative_int
from acquisition.cli import positive_float as _positive_float
from acquisition.cli import positive_int as _positive_int
from nas.network import NetworkError
from profiler.files import atomic_write

__all__ = ["build_parser", "main"]


def _model(args: argparse.Namespace) -> Any:
    from nas.latency import NetworkLatencyModel

    for b in args.bundle:
        if not os.path.isfile(b):
            raise CliError(f"--bundle {b!r} does not exist")
    cal = getattr(args, "calibration", None)
    if cal is not None and not os.path.isfile(cal):
        raise CliError(f"--calibration {cal!r} does not exist")
    return NetworkLatencyModel.load(args.bundle, calibration=cal)


def _space(args: argparse.Namespace, model: Any) -> Any:
    from nas.spaces import get_space

    name = args.space
    if name is None:
        if len(model.families) != 1:
            raise CliError(f"the bundles cover {', '.join(model.families)}: choose a --space")
        name = f"stacked-{model.families[0]}"
    space = get_space(name)
    probe = space.sample(1, seed=0)
    model.check(probe)  # a family without a bundle: clear error before any work
    return space


def _outdir(path: str | None) -> str | None:
    if path is None:
        return None
    if os.path.exists(path) and not os.path.isdir(path):
        raise CliError(f"--out {path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        raise CliError(f"--out {path!r} cannot be created") from None
    return path


class _Device:
    """The store and profiler for the commands that measure (opened together, closed together)."""

    def __init__(self, args: argparse.Namespace, model: Any = None) -> None:
        self.args, self.model = args, model

    def __enter__(self) -> tuple[Any, Any]:
        from acquisition.store import Store
        from profiler.protocol import AdaptiveProtocol
        from profiler.worker import Profiler

        device = device_from_args(self.args)
        device.check_available()
        self.store = Store(self.args.db)
        try:
            self.prof = Profiler(device, AdaptiveProtocol()).__enter__()
        except BaseException:
            self.store.close()
            raise
        plat = getattr(self.model, "platform", None)
        if plat and plat != self.prof.platform_id:
            self.__exit__(None, None, None)
            raise CliError(f"the bundles were fitted on platform {plat}, this device is {self.prof.platform_id}: "
                           "their predictions would be compared with another machine's measurements")
        return self.store, self.prof

    def __exit__(self, *exc: Any) -> None:
        self.prof.__exit__(*exc)
        self.store.close()


def _dump(obj: Any, out: str | None, name: str) -> None:
    if out:
        with atomic_write(os.path.join(out, name)) as fh:
            json.dump(obj, fh, indent=2, default=str)


# -- evaluate --------------------------------------------------------------------------------------------------
def _evaluate_models(args: argparse.Namespace) -> int:
    """``evaluate --model ...``: real models predicted (blocks + glue) against the same models measured whole."""
    from nas.real import RealLatencyModel, evaluate_real, glue_items, measure_glue, measure_models, plot_real
    from nas.spaces import get_space

    blocks = _model(args)
    out = _outdir(args.out)
    for name in args.calibrate_space or []:
        get_space(name)  # an unknown space: its one-line error before anything is measured
    targets = _predict_targets(args)
    items = [it for d in targets for it in glue_items(d, blocks.families, allow_glue=args.allow_glue)]
    with _Device(args, blocks) as (store, prof):
        measure_glue(store, prof, items, progress=not args.no_progress)
        y = measure_models(store, prof, [d.name for d in targets], progress=not args.no_progress)
        calibration = blocks.calibration if getattr(args, "calibration", None) else None
        if args.calibrate_space:
            calibration = _calibrate_on_spaces(args, blocks, store, prof)
        model = RealLatencyModel(blocks.predictors, store, prof.protocol.id, calibration)
        res = evaluate_real([model.predict(d, allow_glue=args.allow_glue) for d in targets], y)
        if calibration is not None:
            cals = calibration if isinstance(calibration, dict) else {"all": calibration}
            res["calibration"] = {f: {"intercept_ms": c.intercept_ms, "slope": c.slope, "std_scale": c.std_scale,
                                      "n": c.n} for f, c in cals.items()}
            res["calibration_spaces"] = list(args.calibrate_space or [])
    if out:
        if res["n"]:
            res["plot"] = plot_real(res, os.path.join(out, "real_models.png"))
        _dump(res, out, "real_models.json")
    if args.json:
        print(json.dumps(res, indent=2, default=str))
        return 0
    from acquisition.tables import text_table

    print(text_table(["model", "measured ms", "predicted ms", "error %", "80 % interval", "coverage %"],
                     [[r["model"], _num(r["measured_ms"]), f"{r['pred_ms']:.3f}", _num(r["error_pct"], 1),
                       f"{r['p10_ms']:.3f}-{r['p90_ms']:.3f}", f"{100 * r['coverage']:.1f}"] for r in res["models"]]))
    for fam, c in res.get("calibration", {}).items():
        print(f"calibration ({fam}) on {c['n']} networks of {', '.join(res['calibration_spaces']) or 'a file'}: "
              f"{c['intercept_ms']:.3g} ms + {c['slope']:.3g} x (blocks + glue), intervals x {c['std_scale']:.2g}")
    m = res.get("metrics")
    if m:
        print(f"{res['n']} models: rho {m['spearman']:.3f} [{m['spearman_lo']:.3f}, {m['spearman_hi']:.3f}], MAPE "
              f"{m['mape']:.1f} %, within +-10 % {100 * m['acc10']:.0f} %, 80 % interval coverage "
              f"{100 * m['coverage80']:.0f} %, lowest block coverage {100 * m['min_block_coverage']:.1f} %")
    return 0


def _calibrate_on_spaces(args: argparse.Namespace, blocks: Any, store: Any, prof: Any) -> dict[str, Any]:
    """Calibrations by family of blocks + glue against whole networks of our own spaces (never the real models):
    ``--calibrate`` networks of each ``--calibrate-space``, decomposed, glue measured, measured whole; each
    family's line is fitted on the networks whose blocks are of that family."""
    from nas.latency import Calibration
    from nas.measure import measure_networks
    from nas.real import RealLatencyModel, glue_items, measure_glue
    from nas.spaces import get_space
    from profiler.decompose import from_torch

    nets, decs = [], []
    for name in args.calibrate_space:
        for i, net in enumerate(get_space(name).sample(args.calibrate, seed=args.seed)):
            nets.append(net)
            decs.append(from_torch(net.build(), net.input_shape(), name=f"{name}#{i}").prefer(blocks.families))
    measure_glue(store, prof, [it for d in decs for it in glue_items(d, blocks.families)],
                 progress=not args.no_progress)
    y = measure_networks(store, prof, nets, progress=not args.no_progress)
    raw = RealLatencyModel(blocks.predictors, store, prof.protocol.id)
    preds = [raw.predict(d) for d in decs]
    pred = np.asarray([r.pred_ms for r in preds])
    sd = np.asarray([r.log_std for r in preds])
    family = np.asarray([max(d.families(), key=lambda f: sum(p.macs for p in d.blocks if p.family == f))
                         for d in decs])
    out = {}
    for fam in sorted(set(family)):
        ok = (family == fam) & np.isfinite(y) & (y > 0)
        if ok.sum() < 3:
            raise CliError(f"only {int(ok.sum())} calibration networks of family {fam} were measured: need 3")
        out[str(fam)] = Calibration.fit(pred[ok], y[ok], sum_log_std=sd[ok], platform=prof.platform_id)
    return out


def _num(v: float | None, digits: int = 3) -> str:
    return "failed" if v is None else f"{v:.{digits}f}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nas.evaluate import evaluate_networks, plot_evaluation
    from nas.measure import measure_networks

    load_plugins(args.plugin)
    if args.model or args.models_from:
        return _evaluate_models(args)
    model = _model(args)
    space = _space(args, model)
    out = _outdir(args.out)
    if args.calibrate + 3 > args.networks:
        raise CliError(f"--calibrate {args.calibrate} leaves fewer than 3 of --networks {args.networks} to evaluate")
    nets = space.sample(args.networks, seed=args.seed)
    with _Device(args, model) as (store, prof):
        y = measure_networks(store, prof, nets, progress=not args.no_progress)
    res = evaluate_networks(model, nets, y, n_calibration=args.calibrate, space=space.name)
    d = res.as_dict()
    d["failed"] = int((~(y > 0)).sum())
    if out:
        d["plot"] = plot_evaluation(res, os.path.join(out, "evaluation.png"))
        if res.calibration is not None:
            res.calibration.save(os.path.join(out, "calibration.json"))
            d["calibration_file"] = os.path.join(out, "calibration.json")
        _dump(d, out, "evaluation.json")
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    c = res.calibration
    how = f": {c.intercept_ms:.3g} ms + {c.slope:.3g} x Σ blocks" if c else ""
    print(f"{space.name}: {res.n_eval} networks measured and predicted ({res.n_calibration} more calibrated the "
          f"overhead{how})")
    for label, m in (("raw Σ blocks", res.raw), ("calibrated", res.calibrated)):
        extra = f", 80 % interval coverage {100 * m['coverage80']:.0f} %" if "coverage80" in m else ""
        print(f"  {label:>12}: r {m['pearson']:.3f}, rho {m['spearman']:.3f} [{m['spearman_lo']:.3f}, "
              f"{m['spearman_hi']:.3f}], MAPE {m['mape']:.1f} %, within +-10 % {100 * m['acc10']:.0f} %{extra}")
    if out:
        print(f"  plot {d['plot']}" + (f"; calibration {d['calibration_file']}" if "calibration_file" in d else ""))
    return 0


# -- predict ---------------------------------------------------------------------------------------------------
def _predict_targets(args: argparse.Namespace) -> list[Any]:
    """The decompositions to predict: ``--model`` s, ``--models-from`` a file, ``--network`` specs."""
    from nas.network import Network
    from nas.real import cached_decomposition
    from profiler.decompose import from_torch
    from profiler.zoo import ModelNameError

    names = list(args.model or [])
    if args.models_from:
        try:
            with open(args.models_from, encoding="utf-8") as fh:
                names += [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as e:
            raise CliError(f"--models-from {args.models_from!r} cannot be read ({e.strerror or e})") from None
    networks = getattr(args, "network", None) or []  # evaluate has no network specs (its --networks is a count)
    if not names and not networks:
        raise CliError("name what to predict: --model NAME (repeatable), --models-from FILE or --network FILE")
    out = []
    for n in names:
        try:
            out.append(cached_decomposition(n, args.cache))
        except ModelNameError as e:
            raise CliError(str(e)) from None
    for path in networks:
        try:
            with open(path, encoding="utf-8") as fh:
                net = Network.from_json(fh.read())
        except OSError as e:
            raise CliError(f"--network {path!r} cannot be read ({e.strerror or e})") from None
        out.append(from_torch(net.build(), net.input_shape(), name=os.path.basename(path)))
    return out


def cmd_predict(args: argparse.Namespace) -> int:
    from acquisition.store import Store
    from nas.real import RealLatencyModel, glue_items, measure_glue

    load_plugins(args.plugin)
    blocks = _model(args)
    protocols = {p.manifest.get("platform", {}).get("protocol") for p in blocks.predictors.values()}
    protocol = next(iter(protocols)) if len(protocols) == 1 else None
    if not protocol:
        raise CliError("the bundles name no single measurement protocol: export them again with this version")
    targets = _predict_targets(args)
    items = [it for d in targets for it in glue_items(d, blocks.families, allow_glue=args.allow_glue)]
    if args.measure_glue:
        with _Device(args, blocks) as (store, prof):
            if prof.protocol.id != protocol:
                raise CliError(f"the bundles were measured with protocol {protocol}, this device measures with "
                               f"{prof.protocol.id}")
            measure_glue(store, prof, items, progress=not args.no_progress)
    elif not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist: measure the glue with --measure-glue on the bundles' device")
    with Store(args.db, readonly=True) as store:
        model = RealLatencyModel(blocks.predictors, store, protocol, blocks.calibration if args.calibration else None)
        res = [model.predict(d, allow_glue=args.allow_glue).as_dict() for d in targets]
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    for r in res:
        extra = f"; blocks without a bundle measured as glue: {len(r['blocks_as_glue'])}" if r["blocks_as_glue"] else ""
        print(f"{r['model']}: {r['pred_ms']:.3f} ms (80 % interval {r['p10_ms']:.3f}-{r['p90_ms']:.3f}); "
              f"{r['blocks']} blocks predict {100 * r['coverage']:.1f} % of it, {r['glue_layers']} glue layers "
              f"{r['glue_ms']:.3f} ms{extra}")
    return 0


# -- blocks ----------------------------------------------------------------------------------------------------
def cmd_blocks(args: argparse.Namespace) -> int:
    from acquisition.profiling import profile_configs
    from nas.measure import space_blocks
    from nas.spaces import get_space
    from profiler.families import get_family

    load_plugins(args.plugin)
    space = get_space(args.space)
    by_family = space_blocks(space, args.networks, seed=args.seed)
    with _Device(args) as (store, prof):
        for fam, cfgs in by_family.items():
            s = profile_configs(store, prof, get_family(fam), cfgs, progress=not args.no_progress)
            print(f"{fam}: {len(cfgs)} distinct blocks of {args.networks} networks of {space.name}: profiled "
                  f"{s.profiled}, reused {s.reused}, failed {s.failed}")
    return 0


# -- search ----------------------------------------------------------------------------------------------------
def _evaluator(args: argparse.Namespace) -> Any:
    from nas.accuracy import DigitsEvaluator

    return DigitsEvaluator(epochs=args.epochs, seed=args.seed)


def cmd_search(args: argparse.Namespace) -> int:
    from nas.search import plot_search, run_search

    load_plugins(args.plugin)
    model = _model(args)
    space = _space(args, model)
    out = _outdir(args.out)
    kw = {"trials": args.trials, "objective": args.objective, "model": model, "evaluator": _evaluator(args),
          "storage": args.storage, "study_name": args.study, "tau_ref_ms": args.tau_ref_ms,
          "budget_ms": args.budget_ms, "seed": args.seed, "progress": not args.no_progress}
    if args.latency_source == "hil":
        with _Device(args, model) as (store, prof):
            res = run_search(space, source="hil", store=store, profiler=prof, **kw)
    else:
        res = run_search(space, source="surrogate", **kw)
    d = res.as_dict()
    if out:
        d["plot"] = plot_search([res], os.path.join(out, "pareto.png"))
        _dump(d, out, "search.json")
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    b = d["best"]
    print(f"{space.name}: {d['trials']} trials ({res.source} latency, {res.objective}), study {res.study_name!r} in "
          f"{args.storage}; tau_ref {res.tau_ref_ms:.3g} ms; accuracy evaluation {res.eval_s:.0f} s, latency "
          f"{res.latency_s:.1f} s")
    if b is None:
        print(f"  no trial met the latency budget of {res.budget_ms:g} ms")
    else:
        print(f"  best: accuracy {b['accuracy']:.3f}, latency {b['latency_ms']:.3g} ms, BALS {b['bals']:.3f}; "
              f"Pareto front {len(d['pareto'])} networks")
    if out:
        print(f"  plot {d['plot']}")
    return 0


# -- compare ---------------------------------------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace) -> int:
    from nas.compare import compare_searches
    from nas.search import plot_search

    load_plugins(args.plugin)
    model = _model(args)
    space = _space(args, model)
    out = _outdir(args.out)
    with _Device(args, model) as (store, prof):
        res = compare_searches(space.name, model=model, store=store, profiler=prof, trials=args.trials,
                               objective=args.objective, storage=args.storage, evaluator=_evaluator(args),
                               tau_ref_ms=args.tau_ref_ms, budget_ms=args.budget_ms, seed=args.seed,
                               surrogate_seed=args.surrogate_seed, progress=not args.no_progress)
    d = res.as_dict()
    if out:
        d["plot"] = plot_search([res.hil, res.surrogate], os.path.join(out, "compare.png"),
                                measured=[None, res.surrogate_measured_ms],
                                title=f"{space.name}: HIL- and surrogate-guided search (measured latency)")
        _dump(d, out, "compare.json")
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    print(f"{space.name}: {d['trials']} trials each; HA-scores at measured latency: W_overall {d['w_overall']:.4f}, "
          f"W_optimal {d['w_optimal']:.4f}, HNQ {d['hnq']:.3f}")
    p, t = d["at_predicted_latency"], d["top10"]
    print(f"  at the surrogate's predicted latency: W_overall {p['w_overall']:.4f}, W_optimal {p['w_optimal']:.4f}, "
          f"HNQ {p['hnq']:.3f}")
    print(f"  optimal = each search's best 10 % by HA-score: W_optimal {t['w_optimal']:.4f}, HNQ {t['hnq']:.3f}")
    bh, bs = d["best"]["hil"], d["best"]["surrogate"]
    print(f"  best HIL: accuracy {bh['accuracy']:.3f} at {bh['latency_ms']:.3g} ms; best surrogate: accuracy "
          f"{bs['accuracy']:.3f} at {bs['measured_latency_ms']:.3g} ms measured ({bs['predicted_latency_ms']:.3g} "
          "predicted)")
    if out:
        print(f"  plot {d['plot']}")
    return 0


# -- parser ----------------------------------------------------------------------------------------------------
def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="acquisition.sqlite", help="database for the measurements (acquisition.sqlite)")
    add_device_args(p, default="cpu", threads=1)
    add_plugin_arg(p, "block families or models the bundles need")


def _model_args(p: argparse.ArgumentParser) -> None:
    """Published models by name (``predict``; ``evaluate`` measures them whole against the prediction)."""
    p.add_argument("--model", action="append", default=None,
                   help="torchvision:NAME or timm:NAME (repeatable; architecture only, no weights)")
    p.add_argument("--models-from", dest="models_from", default=None, help="a file of model names, one per line")
    p.add_argument("--allow-glue", dest="allow_glue", action="store_true",
                   help="measure blocks whose family has no bundle, as glue")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "latency-acquisition",
                                                     "models"),
                   help="folder of cached decompositions (~/.cache/latency-acquisition/models)")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", action="append", required=True, help="a predictor bundle (repeat: one per family)")
    p.add_argument("--space", default=None, help="network space (default stacked-<the bundle's family>)")
    p.add_argument("--trials", type=_positive_int, default=50, help="completed trials per search (50)")
    p.add_argument("--objective", default="bals", choices=("bals", "pareto"),
                   help="bals: TPE on the balanced score (default); pareto: NSGA-II on accuracy and latency")
    p.add_argument("--budget-ms", dest="budget_ms", type=_positive_float, default=None,
                   help="latency budget (a constraint)")
    p.add_argument("--tau-ref-ms", dest="tau_ref_ms", type=_positive_float, default=None,
                   help="BALS reference latency (default: from the space and bundles)")
    p.add_argument("--storage", default="nas.sqlite", help="Optuna storage file (resumable; nas.sqlite)")
    p.add_argument("--epochs", type=_positive_int, default=3, help="training epochs of the digits evaluator (3)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed (0)")
    p.add_argument("--out", default=None, help="directory for the PNG and JSON")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m nas", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("evaluate", help="network latency from bundles against measured networks (Table 4)")
    p.add_argument("--bundle", action="append", required=True, help="a predictor bundle (repeat: one per family)")
    p.add_argument("--space", default=None, help="network space (default stacked-<the bundle's family>)")
    p.add_argument("--networks", type=_positive_int, default=220, help="random networks to measure (220: 200 scored)")
    p.add_argument("--calibrate", type=_non_negative_int, default=20,
                   help="of them, how many calibrate the overhead (20; not scored)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="sample seed (0)")
    p.add_argument("--calibration", default=None,
                   help="with --model: a calibration.json (written by evaluate on a space) applied to each total")
    p.add_argument("--calibrate-space", dest="calibrate_space", action="append", default=None,
                   help="with --model: calibrate blocks + glue on --calibrate networks of this space (repeatable), "
                        "measured whole; the real models are never in the calibration")
    p.add_argument("--out", default=None, help="directory for evaluation.png, calibration.json, evaluation.json")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true")
    _model_args(p)
    _device_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("blocks", help="profile the blocks of random networks of a space")
    p.add_argument("--space", required=True, help="network space, e.g. stacked-mbconv")
    p.add_argument("--networks", type=_positive_int, default=100, help="random networks whose blocks to profile")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--no-progress", action="store_true")
    _device_args(p)
    p.set_defaults(func=cmd_blocks)

    p = sub.add_parser("search", help="hardware-aware search with Optuna")
    _search_args(p)
    p.add_argument("--latency-source", dest="latency_source", default="surrogate", choices=("surrogate", "hil"),
                   help="surrogate: the bundles (default); hil: measure every network on --device")
    p.add_argument("--study", default=None, help="Optuna study name (default from space, source, objective, seed)")
    p.add_argument("--calibration", default=None, help="calibration.json written by evaluate")
    _device_args(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("compare", help="HIL- against surrogate-guided search: W_overall, W_optimal, HNQ")
    _search_args(p)
    p.add_argument("--surrogate-seed", dest="surrogate_seed", type=_non_negative_int, default=None,
                   help="seed of the surrogate search (default --seed + 1: an independent search)")
    p.add_argument("--calibration", default=None, help="calibration.json written by evaluate")
    _device_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("predict", help="latency of published models or network specs from bundles (+ glue)")
    _model_args(p)
    p.add_argument("--network", action="append", default=None, help="a network spec JSON (repeatable)")
    p.add_argument("--bundle", action="append", required=True, help="a predictor bundle (repeat: one per family)")
    p.add_argument("--calibration", default=None, help="calibration.json written by evaluate (applied to the total)")
    p.add_argument("--measure-glue", dest="measure_glue", action="store_true",
                   help="measure the glue not yet in --db on --device (the bundles' platform)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true")
    _device_args(p)
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from profiler.decompose import DecompositionError
    from profiler.zoo import ModelNameError

    return run_command(build_parser(), argv, extra_errors=(NetworkError, DecompositionError, ModelNameError),
                       interrupted="finished measurements and trials are stored")
