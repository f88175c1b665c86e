"""Study reports: learning curves with confidence bands (PNG), the samples/hours-to-target table (Markdown) and
the machine-readable summary (JSON).

Curves: for every strategy, the median over seeds of ρ, MAPE and ±10 % accuracy against training samples and
against profiling hours, with the distribution-free 95 % interval of that median (:func:`studies._stats.median_ci`)
as a band. Against hours, each seed's curve is read as a step function on a common grid, up to the hours the
cheapest seed spent (so every point is a median over all seeds).

Example:
    >>> fmt_ci({"median": 450.0, "lo": 400.0, "hi": float("inf")})
    '450 [400, not reached]'
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from studies._stats import quantile_band

__all__ = ["fmt_ci", "plot_curves", "summary_markdown", "write_report"]

METRICS = (("spearman", "Spearman ρ"), ("mape", "MAPE (%)"), ("acc10", "±10 % accuracy"))


def fmt_ci(c: dict[str, float], digits: int = 0, scale: float = 1.0) -> str:
    def f(v: float) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if math.isinf(v):
            return "not reached"
        return f"{v * scale:.{digits}f}"

    return f"{f(c['median'])} [{f(c['lo'])}, {f(c['hi'])}]"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The per-strategy table of samples and hours to target, savings against the baseline, ±10 % at N."""
    n_at = summary["acc10_at"]
    lines = [f"# Study {summary['study']}", "",
             f"Source: {summary['source'].get('csv') or summary['source'].get('family')}; model {summary['model']}; "
             f"target ρ ≥ {summary['target_spearman']}; {summary['seeds']} seeds. Medians over seeds with their "
             f"{round(100 * summary['level'])} % distribution-free interval; ratios are paired by seed against "
             f"`{summary['baseline']}` (below 1 = a saving).", "",
             "| strategy | met | samples to target | hours to target | samples ratio | hours ratio | "
             f"±10 % at {n_at} |",
             "|---|---|---|---|---|---|---|"]
    for name, s in summary["strategies"].items():
        sr = fmt_ci(s["samples_ratio"], 2) if "samples_ratio" in s else "1"
        hr = fmt_ci(s["hours_ratio"], 2) if "hours_ratio" in s else "1"
        lines.append(f"| {name} | {s['met']}/{s['runs']} | {fmt_ci(s['samples_to_target'])} | "
                     f"{fmt_ci(s['hours_to_target'], 4)} | {sr} | {hr} | {fmt_ci(s[f'acc10_at_{n_at}'], 1, 100)} % |")
    return "\n".join(lines) + "\n"


def plot_curves(result: Any, path: str) -> str:
    """Write the 2 x 3 grid of learning curves (rows: against samples, against hours) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    target = result.settings["target_spearman"]
    for si, strat in enumerate(result.settings["strategies"]):
        curves = result.curves(strat)
        if not curves:
            continue
        color = f"C{si}"
        grid_n = np.array(sorted({r["n_train"] for recs in curves.values() for r in recs}), dtype=float)
        max_h = min(recs[-1]["train_hours"] for recs in curves.values())  # where every seed has a curve
        grid_h = np.linspace(0, max_h, 120)
        for col, (metric, _label) in enumerate(METRICS):
            by_n = np.full((len(curves), len(grid_n)), np.nan)
            by_h = np.full((len(curves), len(grid_h)), np.nan)
            for i, recs in enumerate(curves.values()):
                n = np.array([r["n_train"] for r in recs], dtype=float)
                h = np.array([r["train_hours"] for r in recs])
                v = np.array([r[metric] for r in recs], dtype=float)
                by_n[i, np.searchsorted(grid_n, n)] = v
                j = np.searchsorted(h, grid_h, side="right") - 1  # step function: the last fit by that hour
                ok = (j >= 0) & (grid_h <= h[-1])
                by_h[i, ok] = v[j[ok]]
            for row, (x, vals) in enumerate(((grid_n, by_n), (grid_h, by_h))):
                med, lo, hi = quantile_band(vals)
                ax = axes[row, col]
                ax.plot(x, med, color=color, label=strat)
                ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)
    for col, (metric, label) in enumerate(METRICS):
        for row, xl in enumerate(("training samples", "profiling hours (training)")):
            ax = axes[row, col]
            ax.set_xlabel(xl)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if metric == "spearman":
                ax.axhline(target, color="k", linestyle="--", linewidth=0.8)
                ax.set_ylim(max(0.5, ax.get_ylim()[0]), 1.0)
            if metric == "mape":
                ax.set_yscale("log")
    axes[0, 0].legend(loc="lower right")
    fig.suptitle(f"Study {result.name}: median over {len({r['seed'] for r in result.runs})} seeds, "
                 "band = 95 % interval of the median")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: Any, out_dir: str, baseline: str = "random", acc10_at: int | None = None
                 ) -> dict[str, str]:
    """``summary.md``, ``summary.json``, ``records.csv`` and ``learning_curves.png`` in ``out_dir``."""
    import csv

    os.makedirs(out_dir, exist_ok=True)
    summary = result.summary(baseline=baseline, acc10_at=acc10_at)
    paths = {"markdown": os.path.join(out_dir, "summary.md"), "json": os.path.join(out_dir, "summary.json"),
             "records": os.path.join(out_dir, "records.csv"), "curves": os.path.join(out_dir, "learning_curves.png")}
    with open(paths["markdown"], "w") as fh:
        fh.write(summary_markdown(summary))
    with open(paths["json"], "w") as fh:
        json.dump(_jsonable(summary), fh, indent=2)
    with open(paths["records"], "w", newline="") as fh:
        if result.records:
            w = csv.DictWriter(fh, fieldnames=list(result.records[0]))
            w.writeheader()
            w.writerows(result.records)
    plot_curves(result, paths["curves"])
    return paths


def _jsonable(x: Any) -> Any:
    """Infinities (targets not reached) as null, so the JSON is standard."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x
