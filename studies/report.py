"""Study reports: learning curves with confidence bands (PNG), the samples/hours-to-target table (Markdown) and
the machine-readable summary (JSON). Every file is written to a temporary name and renamed: a report is
replaced whole or not at all.

Curves: for every arm, ρ on never-seen rows, the ρ the campaign believed (its own verification), and ±10 %
accuracy on never-seen rows. Against training samples: the median over seeds with the distribution-free 95 %
interval of that median (:func:`studies._stats.median_ci`) as a band. Against the campaign's bill in hours
(:mod:`acquisition.bill`, verification included): each seed as its own step curve, since seeds start (a
validation set) and stop at different bills and a median at one hour would mix seeds at different stages.

Example:
    >>> fmt_ci({"median": 450.0, "lo": 400.0, "hi": float("inf"), "n": 10, "interval": "95 %"})
    '450 [400, not reached]'
    >>> fmt_ci({"median": 0.5, "lo": 0.4, "hi": 0.7, "n": 3, "interval": "range"}, 2)
    '0.50 (range 0.40-0.70)'
    >>> fmt_ci({"median": 0.5, "lo": 0.4, "hi": 0.7, "n": 12, "interval": "95 %", "bound": "upper"}, 2)
    '≤ 0.50 [0.40, 0.70]'
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from acquisition.tables import markdown_table
from profiler.files import atomic_write
from studies._stats import quantile_band

__all__ = ["fmt_ci", "plot_curves", "summary_markdown", "write_report"]

METRICS = (("test_spearman", "Spearman ρ, never-seen rows"), ("spearman", "Spearman ρ the campaign believed"),
           ("test_acc10", "±10 % accuracy, never-seen rows"))


def fmt_ci(c: dict[str, Any], digits: int = 0, scale: float = 1.0, *, empty: str = "no seed",
           never: str = "not reached") -> str:
    """``median [lo, hi]`` (a 95 % interval), ``median (range lo-hi)`` over fewer than 6 seeds, with ``≤``/``≥``
    when the median is a bound. A cell without a value says why: ``empty`` when no seed gave one, ``never`` when
    the median is a target not reached (alone when the whole interval is)."""
    def f(v: float | None) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        if math.isinf(v):
            return "not reached"
        return f"{v * scale:.{digits}f}"

    med = c.get("median")
    if c.get("n") == 0 or med is None or (isinstance(med, float) and math.isnan(med)):
        return empty
    if math.isinf(med) and all(isinstance(c.get(k), float) and math.isinf(c[k]) for k in ("lo", "hi")):
        return never
    sign = {"upper": "≤ ", "lower": "≥ ", "mixed": "~ "}.get(c.get("bound") or "", "")
    m = never if math.isinf(med) else f(med)
    if c.get("interval") == "range":
        return f"{sign}{m} (range {f(c['lo'])}-{f(c['hi'])})"
    return f"{sign}{m} [{f(c['lo'])}, {f(c['hi'])}]"


def _targets(summary: dict[str, Any]) -> str:
    """Every target the study asked for, as one phrase."""
    out = f"target ρ ≥ {summary['target_spearman']}"
    if summary.get("target_acc10") is not None:
        out += f" and ±10 % accuracy ≥ {100 * summary['target_acc10']:g} %"
    return out + " on never-seen rows"


def _budget(summary: dict[str, Any]) -> str:
    """The budget of each run, in words (``1500 samples``, ``0.5 h``, or both)."""
    parts = []
    if summary.get("budget_samples") is not None:
        parts.append(f"{summary['budget_samples']} samples")
    if summary.get("budget_hours") is not None:
        parts.append(f"{summary['budget_hours']:g} h")
    return " or ".join(parts) or "the budget"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The per-arm table: verified stops, samples and hours to target, savings against the baseline, the
    never-seen ρ at the stop, oracle hours, ±10 % at N. Every empty cell says why."""
    n_at = summary["acc10_at"]
    budget = _budget(summary)
    baseline = summary["baseline"]
    lines = [f"# Study {summary['study']}", "",
             f"Source: {summary['source'].get('csv') or summary['source'].get('family')}; model {summary['model']}; "
             f"{_targets(summary)}; budget {budget} per run; {summary['seeds']} seeds; baseline `{baseline}` "
             f"with a holdout validation set of {summary.get('validation_size')}. Hours are each campaign's whole "
             "bill (verification included). A stop is *verified* when the never-seen rows meet every target where "
             "the campaign stopped; false stops and runs without a stop count as not reached. Medians over seeds "
             f"with their {round(100 * summary['level'])} % distribution-free interval (the range over fewer than "
             "6 seeds); ratios are paired by seed (below 1 = a saving; ≤ / ≥: a bound, when one side never got "
             "there), p = two-sided Wilcoxon signed-rank test.", "",
]
    head = ["arm", "verified stops", "false stops", "samples to target", "hours to target", "hours ratio", "p",
            "never-seen ρ at stop", "never-seen ±10 % at stop", "oracle hours", f"never-seen ±10 % at {n_at}"]
    rows = []
    for name, s in summary["arms"].items():
        never = f"no seed met the target in {budget}" if s["met"] == 0 else f"not reached in {budget}"
        against = s.get("ratio_against", baseline)
        if "hours_ratio" in s:
            hr = fmt_ci(s["hours_ratio"], 2, empty=f"no seed met the target in either arm ({budget})")
            if against != baseline:
                hr += f" vs `{against}`"
            pv = s["hours_ratio"]["wilcoxon_p"]
            p = f"{pv:.3f}" if not math.isnan(pv) else (
                "n/a (fewer than 2 paired seeds)" if s["hours_ratio"].get("pairs", 0) < 2 else "n/a (no difference)")
        elif name == baseline:
            hr, p = "1 (baseline)", "baseline"
        else:
            hr = p = f"no baseline `{baseline}` in the study"
        stopped = "no seed stopped" if s.get("no_stop", 0) == s["runs"] else "no value"
        oracle_never = (f"never met on never-seen rows in {budget}")
        rows.append([name, f"{s['met']}/{s['runs']}", s["false_stops"], fmt_ci(s["samples_to_target"], never=never),
                     fmt_ci(s["hours_to_target"], 4, never=never), hr, p,
                     fmt_ci(s["test_spearman_at_stop"], 4, empty=stopped), _pct(s["test_acc10_at_stop"], stopped),
                     fmt_ci(s["oracle_hours"], 4, never=oracle_never),
                     _pct(s[f"acc10_at_{n_at}"], f"no run reached {n_at} samples")])
    lines.append(markdown_table(head, rows))
    twins = [n for n, s in summary["arms"].items() if s.get("ratio_against", baseline) != baseline]
    if twins:
        lines += ["", "Transfer: each `+transfer` arm is its arm with transfer on (the family's probe set first, "
                  "then the sources where they help), and its ratios are against the same arm without transfer "
                  f"(sources: {summary.get('transfer', {}).get('sources', 'see the settings')})."]
    d = summary["arms"].get("default", {}).get("strategy_only")
    if d:
        lines += ["", f"Strategy-only ratio of `default` (its strategy `{d['arm']}` with the baseline's holdout "
                  f"verification, against `{baseline}`): "
                  f"{fmt_ci(d['hours_ratio'], 2, empty='no seed met the target in either arm')}."]
    return "\n".join(lines) + "\n"


def _pct(c: dict[str, Any], empty: str = "no seed") -> str:
    return empty if c.get("n") == 0 else fmt_ci(c, 1, 100, empty=empty) + " %"


def plot_curves(result: Any, path: str) -> str:
    """Write the 2 x 3 grid of learning curves (rows: against samples, against hours) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    target = result.settings["target_spearman"]
    for si, strat in enumerate(result.arms):
        curves = result.curves(strat)
        if not curves:
            continue
        color = f"C{si}"
        grid_n = np.array(sorted({r["n_train"] for recs in curves.values() for r in recs}), dtype=float)
        for col, (metric, _label) in enumerate(METRICS):
            by_n = np.full((len(curves), len(grid_n)), np.nan)
            for i, recs in enumerate(curves.values()):
                n = np.array([r["n_train"] for r in recs], dtype=float)
                v = np.array([np.nan if r[metric] is None else r[metric] for r in recs], dtype=float)
                by_n[i, np.searchsorted(grid_n, n)] = v
            med, lo, hi = quantile_band(by_n)
            ax = axes[0, col]
            ax.plot(grid_n, med, color=color, label=strat)
            ax.fill_between(grid_n, lo, hi, color=color, alpha=0.18, linewidth=0)
            # against hours, seeds start (a validation set) and stop at different bills, so a median at one hour
            # would mix seeds at different stages: each seed is drawn as its own step curve
            for recs in curves.values():
                h = [r["hours"] for r in recs]
                v = [np.nan if r[metric] is None else r[metric] for r in recs]
                axes[1, col].step(h, v, where="post", color=color, alpha=0.5, linewidth=1)
    for col, (metric, label) in enumerate(METRICS):
        for row, xl in enumerate(("training samples", "device hours (the campaign's whole bill)")):
            ax = axes[row, col]
            ax.set_xlabel(xl)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if metric.endswith("spearman"):
                ax.axhline(target, color="k", linestyle="--", linewidth=0.8)
                ax.set_ylim(max(0.9, ax.get_ylim()[0]), 1.0)
    axes[0, 0].legend(loc="lower right")
    fig.suptitle(f"Study {result.name}, {len({r['seed'] for r in result.runs})} seeds. Top: median over seeds, "
                 "band = 95 % interval of the median (the range under 6 seeds). Bottom: each seed.")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path


def write_report(result: Any, out_dir: str, baseline: str = "random", acc10_at: int | None = None
                 ) -> dict[str, str]:
    """``summary.md``, ``summary.json``, ``records.csv`` and ``learning_curves.png`` in ``out_dir``, each written
    whole or not at all."""
    import csv
    import io

    os.makedirs(out_dir, exist_ok=True)
    summary = result.summary(baseline=baseline, acc10_at=acc10_at)
    paths = {"markdown": os.path.join(out_dir, "summary.md"), "json": os.path.join(out_dir, "summary.json"),
             "records": os.path.join(out_dir, "records.csv"), "curves": os.path.join(out_dir, "learning_curves.png")}
    buf = io.StringIO()
    if result.records:
        w = csv.DictWriter(buf, fieldnames=list(result.records[0]))
        w.writeheader()
        w.writerows(result.records)
    for key, text in (("markdown", summary_markdown(summary)), ("json", json.dumps(_jsonable(summary), indent=2)),
                      ("records", buf.getvalue())):
        with atomic_write(paths[key]) as fh:
            fh.write(text)
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
