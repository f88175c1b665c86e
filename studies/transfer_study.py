"""Leave-one-device-out transfer studies on a many-device table (HELP's and NASFLAT's protocol, issue 27).

A recorded table whose rows name their device in one column (``device_col``) is a set of platforms of one block
family. For every target device in turn, :func:`run_transfer_study` runs an ordinary :class:`~studies.study.Study`
on that device's rows with every *other* device as a source of its own (``transfer_by``): the ``default`` arm
without transfer and ``default+transfer``, over the same seeds. Per target it reports

- the never-seen ρ at ``at`` training samples (5, 10, 20, 50) with and without transfer, and beside them the
  **best source alone**: the source whose latencies agree best (Spearman) with the rows the transfer campaign
  had measured at that point, read as the target's prediction (any monotone map of it ranks the same), scored
  on the rows the campaign never saw — what a transfer model must never fall below;
- whether the transfer model's never-seen ρ ever *fell* as samples grew (per seed, by more than ``fall_tol``),
  and beside it the same check of one fixed predictor on the same never-seen rows: those rows change as the
  campaign measures them, which moves ρ on a small table with no model changing (the check's noise floor);
- samples and hours to a verified target and false stops, with and without transfer.

Each target's study lives in its own database (``OUT/<target>/study.sqlite``); running again resumes.

Example:
    >>> import csv, os, tempfile
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "zoo.csv")
    >>> with open(path, "w", newline="") as fh:
    ...     w = csv.writer(fh); _ = w.writerow(["hw", "c", "device", "ms"])
    ...     for dev, k in (("a", 1.0), ("b", 2.5), ("c", 0.4)):
    ...         w.writerows([hw, c, dev, k * 1e-3 * hw * hw * c ** 1.1] for hw in range(7, 57, 7)
    ...                     for c in range(8, 129, 8))
    >>> rows = run_transfer_study(path, params=["hw", "c"], latency_col="ms", device_col="device", targets=["b"],
    ...                           seeds=[0], budget_samples=30, batch_size=5, initial_size=5, target_spearman=0.9,
    ...                           out=os.path.join(d, "loo"), n_jobs=1, progress=False)
    >>> rows[0]["target"], sorted(rows[0]["rho_at"]["10"])
    ('b', ['best_source', 'with', 'without'])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from acquisition.tables import markdown_table

__all__ = ["AT_SAMPLES", "TransferStudyError", "fell", "run_transfer_study", "transfer_markdown",
           "write_transfer_report"]

AT_SAMPLES = (5, 10, 20, 50)
FALL_TOL = 0.005  # a never-seen ρ lower than an earlier one of the same seed by more than this is a fall


class TransferStudyError(ValueError):
    """Bad arguments of a transfer study (an unknown device, a table without the device column)."""


def fell(values: Sequence[float], tol: float = FALL_TOL) -> bool:
    """Whether a sequence (a seed's never-seen ρ, iteration by iteration) ever drops more than ``tol`` below its
    running maximum.

    >>> fell([0.90, 0.95, 0.946, 0.96]), fell([0.90, 0.95, 0.94])
    (False, True)
    """
    return any(v < max(values[:i]) - tol for i, v in enumerate(values) if i)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:80]


def run_transfer_study(csv_path: str, *, params: Sequence[str], latency_col: str, device_col: str,
                       targets: Sequence[str] | None = None, where: Sequence[str] = (), unit: str = "ms",
                       categorical: Sequence[str] = (), numeric: Sequence[str] = (), duplicates: str = "error",
                       seeds: Sequence[int] | int = 10, target_spearman: float = 0.98, budget_samples: int = 100,
                       batch_size: int = 5, initial_size: int = 5, at: Sequence[int] = AT_SAMPLES,
                       out: str = "transfer-study", n_jobs: int = -1, progress: bool = True,
                       fall_tol: float = FALL_TOL) -> list[dict[str, Any]]:
    """Run (or resume) the leave-one-device-out study; returns one row per target device (module docstring)."""
    from studies.replay import ReplayError, column_values, parse_where
    from studies.sources import ReplaySource
    from studies.study import Study

    w = parse_where(where)
    if device_col in w:
        raise TransferStudyError(f"--where must not filter on the device column {device_col!r}: name targets with "
                                 "--targets")
    try:
        devices = column_values(csv_path, device_col, w)
    except ReplayError as e:
        raise TransferStudyError(str(e)) from None
    if len(devices) < 2:
        raise TransferStudyError(f"column {device_col!r} holds {len(devices)} device(s): a transfer study needs at "
                                 "least two")
    targets = list(targets or devices)
    unknown = [t for t in targets if t not in devices]
    if unknown:
        raise TransferStudyError(f"target device {unknown[0]!r} is not in column {device_col!r}: devices are "
                                 f"{', '.join(devices)}")
    rows = []
    for target in targets:
        src = ReplaySource(csv=csv_path, params=list(params), latency_col=latency_col, unit=unit,
                           where=[*where, f"{device_col}={target}"], categorical=list(categorical),
                           numeric=list(numeric), duplicates=duplicates)
        d = os.path.join(out, _safe(target))
        os.makedirs(d, exist_ok=True)
        study = Study(f"loo-{_safe(target)}", src, arms=["default"], seeds=seeds, target_spearman=target_spearman,
                      budget_samples=budget_samples, batch_size=batch_size, initial_size=initial_size,
                      db=os.path.join(d, "study.sqlite"), transfer_by=device_col, run_to_budget=True)
        result = study.validate().run(n_jobs=n_jobs, progress=progress)
        rows.append(_target_row(target, study, result, at, fall_tol))
    return rows


def _target_row(target: str, study: Any, result: Any, at: Sequence[int], fall_tol: float) -> dict[str, Any]:
    from studies.study import TRANSFER_SUFFIX

    s = result.summary()["arms"]
    with_arm, without = "default" + TRANSFER_SUFFIX, "default"
    best, control_falls = _best_source_curves(study, result, at, fall_tol)
    rho_at: dict[str, dict[str, float]] = {}
    for n in at:
        cell = {}
        for label, arm in (("without", without), ("with", with_arm)):
            vals = [v for v in result.at_samples(arm, n, "test_spearman").values() if not math.isnan(v)]
            cell[label] = float(np.median(vals)) if vals else float("nan")
        b = [v for v in best.get(n, []) if not math.isnan(v)]
        cell["best_source"] = float(np.median(b)) if b else float("nan")
        rho_at[str(n)] = cell
    falls = 0
    for recs in result.curves(with_arm).values():
        vals = [r["test_spearman"] for r in recs if r["test_spearman"] is not None]
        falls += fell(vals, fall_tol)
    return {"target": target, "rho_at": rho_at, "seeds": len(result.curves(with_arm)),
            "transfer_falls": falls, "control_falls": control_falls,
            **{f"{k}_{label}": s[arm][k] for label, arm in (("without", without), ("with", with_arm))
               for k in ("samples_to_target", "hours_to_target", "false_stops", "met", "runs")},
            "hours_ratio": s[with_arm].get("hours_ratio")}


def _trajectories(study: Any, result: Any) -> tuple[dict[str, float], list[dict[str, float]], dict[int, list[str]]]:
    """The target's recorded latencies by key, each source's, and per seed of the transfer arm the keys its
    campaign measured, in order."""
    from acquisition.store import Store
    from studies.study import TRANSFER_SUFFIX, study_sources

    oracle, family = study.source.open()
    table = oracle.table
    truth = dict(zip(table.keys, table.latency_ms, strict=True))
    sources = [{family.key(c): y for c, y in zip(s.configs, s.latency_ms, strict=True)}
               for s in study_sources(study, oracle, family)]
    name = ("default" + TRANSFER_SUFFIX).replace("+", ".")
    measured: dict[int, list[str]] = {}
    for seed in result.curves("default" + TRANSFER_SUFFIX):
        path = os.path.join(study.db + ".campaigns", f"seed-{seed}.sqlite")
        with Store(path, readonly=True) as store:
            measured[seed] = [m["key"] for m in store.members(f"{name}-s{seed}", role="train", status="ok")]
    return truth, sources, measured


def _unseen_rho(truth: dict[str, float], src: dict[str, float], seen: Sequence[str]) -> float:
    from surrogates.metrics import spearman

    skip = set(seen)
    rest = [k for k in truth if k not in skip and k in src]
    return float(spearman([truth[k] for k in rest], [src[k] for k in rest])) if len(rest) > 2 else float("nan")


def _agreement(truth: dict[str, float], src: dict[str, float], keys: Sequence[str]) -> float:
    from surrogates.metrics import spearman

    common = [k for k in keys if k in src]
    if len(common) < 3:
        return -math.inf
    return float(spearman([truth[k] for k in common], [src[k] for k in common]))


def _best_source_curves(study: Any, result: Any, at: Sequence[int], fall_tol: float = FALL_TOL
                        ) -> tuple[dict[int, list[float]], int]:
    """Per ``n`` in ``at``, per seed: the never-seen ρ of the source that agrees best with the first ``n`` rows the
    transfer campaign measured (sources read from the table: each device's recorded latency of a configuration).

    And the control of the fall check: on how many seeds one *fixed* predictor (the source that agrees best with
    the whole target table) falls by more than ``fall_tol`` on the same never-seen rows at every iteration. The
    never-seen rows are those the campaign has not measured yet, so they change as it measures: on a small table
    this moves ρ without any model changing."""
    from studies.study import TRANSFER_SUFFIX

    truth, sources, measured = _trajectories(study, result)
    out: dict[int, list[float]] = {n: [] for n in at}
    control_falls = 0
    for seed, keys in measured.items():
        for n in at:
            seen = keys[:n]
            if len(seen) < n or not sources:
                out[n].append(float("nan"))
                continue
            best = max(sources, key=lambda src, seen=seen: _agreement(truth, src, seen))
            out[n].append(_unseen_rho(truth, best, seen))
        if sources:
            fixed = max(sources, key=lambda src: _agreement(truth, src, list(truth)))
            ns = [r["n_train"] for r in result.curves("default" + TRANSFER_SUFFIX)[seed]]
            vals = [v for v in (_unseen_rho(truth, fixed, keys[:n]) for n in ns) if not math.isnan(v)]
            control_falls += fell(vals, fall_tol)
    return out, control_falls


def transfer_markdown(rows: Sequence[dict[str, Any]], target_spearman: float) -> str:
    """The report: per target device, never-seen ρ at each sample count and the samples/hours to the target."""
    from studies.report import fmt_ci

    at = list(rows[0]["rho_at"]) if rows else []
    head = ["target", *[f"ρ at {n}: without / with / best source" for n in at],
            "falls (seeds): transfer / a fixed predictor", f"samples to ρ {target_spearman}: without / with",
            "hours ratio with / without",
            "false stops without / with"]
    table = []

    def f(v: float) -> str:
        return "n/a" if v is None or math.isnan(v) else f"{v:.3f}"

    for r in rows:
        cells = [r["target"], *[" / ".join(f(r["rho_at"][n][k]) for k in ("without", "with", "best_source"))
                                for n in at],
                 f"{r['transfer_falls']} / {r.get('control_falls', 'n/a')} of {r['seeds']}",
                 f"{fmt_ci(r['samples_to_target_without'])} / {fmt_ci(r['samples_to_target_with'])}",
                 fmt_ci(r["hours_ratio"], 2) if r.get("hours_ratio") else "n/a",
                 f"{r['false_stops_without']} / {r['false_stops_with']}"]
        table.append(cells)
    return markdown_table(head, table) + "\n"


def write_transfer_report(rows: Sequence[dict[str, Any]], out: str, target_spearman: float) -> dict[str, str]:
    """``transfer.md``, ``transfer.json`` and ``transfer.png`` (never-seen ρ against samples per target) in
    ``out``, each written whole."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from profiler.files import atomic_write
    from studies.report import _jsonable

    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, f"transfer.{k}") for k in ("md", "json", "png")}
    for key, text in (("md", transfer_markdown(rows, target_spearman)), ("json", json.dumps(_jsonable(list(rows)),
                                                                                           indent=2))):
        with atomic_write(paths[key]) as fh:
            fh.write(text)
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3.2 * max(1, len(rows)), 3.2), squeeze=False,
                             sharey=True)
    for ax, r in zip(axes[0], rows, strict=False):
        xs = [int(n) for n in r["rho_at"]]
        for k, style in (("without", "o-"), ("with", "s-"), ("best_source", "^--")):
            ax.plot(xs, [r["rho_at"][str(n)][k] for n in xs], style, label=k.replace("_", " "))
        ax.axhline(target_spearman, color="grey", lw=0.8)
        ax.set_title(r["target"][:28], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("samples")
    axes[0][0].set_ylabel("never-seen Spearman ρ (median over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(paths["png"], "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return paths
