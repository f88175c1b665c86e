"""Cost reports: profiling hours by campaign, platform, family and activity, cost per sample, engine overhead
share, and PNG plots of each campaign's learning curve and of predicted vs measured latency on validation.

``python -m acquisition report [--db …] [--campaign NAME] [--format md|json|html] [--out DIR]`` writes
``report.md`` / ``report.json`` / ``report.html`` and the PNGs into ``DIR``. Every figure is computed from the
ledger and the iteration records; nothing is estimated.

Platforms are named by what they are (device model, threads, dtype, batch: :func:`profiler.devices.platform_label`),
with their short id beside. A campaign's **device hours** are its bill (:mod:`acquisition.bill`: every
measurement it used, the validation set included), in the campaigns table and on the learning curves' hours axis
alike; a holdout campaign measures its validation set before the first fit, so its curve starts at the
validation hours (shaded on the plot). Each campaign's **noise floor** is the one it ran under, as the engine
recorded it (:func:`acquisition.campaign.noise_floor_of`: the platform's ``doctor`` verdict and figures, else the
family's re-measured blocks), with the targets it flagged as above what that noise allows. The HTML page keeps
every table within the page width (cells wrap) and is tested in headless Chromium at 1280 px.

Example:
    >>> import os, tempfile
    >>> from acquisition.store import Store
    >>> with Store(os.path.join(tempfile.mkdtemp(), "r.sqlite")) as store:
    ...     build_report(store)["totals"]["profiling_hours"]
    0.0
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from acquisition.bill import campaign_bill
from acquisition.campaign import describe_floor
from acquisition.store import PROFILE_ACTIVITIES
from acquisition.tables import markdown_table
from profiler.files import atomic_write

__all__ = ["ENGINE_ACTIVITIES", "build_report", "render_markdown", "write_report"]

ENGINE_ACTIVITIES = ("fit", "evaluate", "query", "export", "transfer")


def _group(store: Any, cols: list[str], campaign: str | None = None) -> list[dict[str, Any]]:
    return store.ledger_groups(cols, campaign=campaign)


def _platforms(store: Any) -> dict[str, dict[str, Any]]:
    """Every stored platform by id: its label (what it is), device spec, kind and torch version."""
    from profiler.devices import platform_label

    return {p["id"]: {"id": p["id"], "label": platform_label(p["fingerprint"]), "device": p["device"],
                      "kind": p["kind"], "torch": p["fingerprint"].get("torch")} for p in store.platforms()}


def build_report(store: Any, campaign: str | None = None) -> dict[str, Any]:
    """All report figures as plain data (what ``--format json`` prints)."""
    platforms = _platforms(store)

    def label(pid: str | None) -> str | None:
        return platforms[pid]["label"] if pid in platforms else None

    by_activity = _group(store, ["activity"], campaign)
    profile_s = sum(r["seconds"] for r in by_activity if r["activity"] in PROFILE_ACTIVITIES)
    engine_s = sum(r["seconds"] for r in by_activity if r["activity"] in ENGINE_ACTIVITIES)
    n_profiled = sum(r["rows"] for r in by_activity if r["activity"] in PROFILE_ACTIVITIES
                     and r["activity"] != "lost_profile")  # lost device time is not a block profiled
    noise = _noise_rows(store)
    ceiling = {(r["platform"], r["family"]): r for r in noise}
    campaigns = []
    for c in store.campaigns():
        if campaign and c["name"] != campaign:
            continue
        its = store.iterations(c["name"])
        acts = {r["activity"]: r["seconds"] for r in _group(store, ["activity"], c["name"])}
        bill = campaign_bill(store, c["name"])  # the one bill: every device second of the campaign's measurements
        prof = bill.total_s
        eng = sum(v for k, v in acts.items() if k in ENGINE_ACTIVITIES)
        n_train = len(store.members(c["name"], "train", status="ok"))
        last = its[-1] if its else {}
        campaigns.append({
            "name": c["name"], "family": c["family"], "platform": c["platform"],
            "platform_label": label(c["platform"]), "state": c["state"],
            "strategy": c["spec"]["strategy"], "model": c["spec"]["model"],
            "target_spearman": c["spec"]["target_spearman"], "iterations": len(its), "samples": n_train,
            "validation_samples": len(store.members(c["name"], "validation", status="ok")),
            "verification": c["spec"].get("verification", "holdout"),
            "profiling_hours": bill.hours, "validation_hours": bill.role_hours("validation"),
            "engine_seconds": eng, "overhead_share": eng / (eng + prof) if eng + prof > 0 else None,
            "cost_per_sample_s": prof / bill.measurements if bill.measurements else None,
            "spearman": last.get("spearman"), "mape": last.get("mape"), "acc10": last.get("acc10"),
            "noise_acc10": ceiling.get((c["platform"], c["family"]), {}).get("within10"),
            "learning_curve": [{k: it[k] for k in ("iteration", "n_train", "profiling_s", "spearman", "spearman_lo",
                                                    "spearman_hi", "mape", "acc10")} for it in its],
            "bundle": (store.predictors(c["name"]) or [{}])[-1].get("path"),
            "transfer": c["spec"].get("transfer", "none"),
            "sources": [{k: r[k] for k in ("name", "kind", "rows", "agreement", "used", "reason")}
                        for r in store.campaign_sources(c["name"])],
            "final_model": last.get("model"), "transfer_gain": last.get("transfer_gain"),
            "noise_floor": c["spec"].get("noise_floor"), "noise_warnings": list(c["spec"].get("noise_warnings") or []),
            **_device_time(acts),
        })
    by_platform_family = [{**r, "platform_label": label(r["platform"]), "hours": r["seconds"] / 3600}
                          for r in _group(store, ["platform", "family", "activity"], campaign)]
    used = {c["platform"] for c in campaigns} | {r["platform"] for r in by_platform_family} | {
        r["platform"] for r in noise}
    return {
        "database": os.path.abspath(store.path),
        "campaign": campaign,
        "totals": {"profiling_hours": profile_s / 3600, "engine_seconds": engine_s,
                   "overhead_share": engine_s / (engine_s + profile_s) if engine_s + profile_s > 0 else None,
                   "measurements_charged": n_profiled,
                   "cost_per_measurement_s": profile_s / n_profiled if n_profiled else None},
        "by_activity": [{**r, "hours": r["seconds"] / 3600} for r in by_activity],
        "by_campaign": [{**r, "hours": r["seconds"] / 3600} for r in _group(store, ["campaign", "activity"],
                                                                                          campaign)],
        "by_platform_family": by_platform_family,
        "platforms": [p for pid, p in platforms.items() if pid in used],
        "campaigns": campaigns,
        "noise": [{**r, "platform_label": label(r["platform"])} for r in noise],
        "devices": [{**r, "platform_label": label(r["platform"])} for r in _device_rows(store, campaign)],
    }


def _device_time(acts: dict[str, float]) -> dict[str, Any]:
    """A campaign's device time over its runs (the ledger): busy (its measurements' device seconds, charged as it
    measured), idle (the runs' seconds the device waited for the engine, ``device_idle``), wall = busy + idle."""
    from acquisition.loop.pipeline import IDLE_ACTIVITY

    busy = sum(v for k, v in acts.items() if k in PROFILE_ACTIVITIES)
    idle = acts.get(IDLE_ACTIVITY, 0.0)
    return {"device_busy_s": busy, "device_idle_s": idle, "device_wall_s": busy + idle,
            "idle_share": idle / (busy + idle) if busy + idle > 0 else None}


def _device_rows(store: Any, campaign: str | None) -> list[dict[str, Any]]:
    """Per fleet device actor (``device_state.fleet``, :mod:`profiler.fleet`): the measurements it took and
    their device hours, with each platform's device time lost on actors that died (``lost_profile``)."""
    from acquisition.loop.pipeline import IDLE_ACTIVITY

    rows = store.fleet_actor_rows(campaign=campaign)
    lost = store.lost_seconds(campaign=campaign)
    where, args = ("and campaign = ?", [campaign]) if campaign else ("", [])
    idle = dict(store.db.execute(f"select platform || '|' || note, sum(seconds) from ledger where activity = ? {where} "
                                 "and note like 'actor %' group by platform, note", [IDLE_ACTIVITY, *args]).fetchall())
    return [{"platform": p, "actor": a, "host": h, "measurements": n, "hours": sec / 3600,
             "idle_hours": (idle.get(f"{p}|actor {a}") or 0.0) / 3600,
             "platform_lost_hours": (lost.get(p) or 0.0) / 3600} for p, a, h, n, sec in rows]


def _noise_rows(store: Any) -> list[dict[str, Any]]:
    """The noise ceiling of every platform and family with re-measured blocks (:mod:`acquisition.noise`)."""
    from acquisition.noise import noise_ceiling

    if not store.has_table("repeats"):  # an older database opened read-only
        return []
    pairs = sorted({(r["platform"], r["family"]) for r in store.repeats()})
    out = []
    for platform, family in pairs:
        c = noise_ceiling(store, family, platform=platform)
        if c is not None:
            out.append({"platform": platform, "family": family, "n": c.n, "within10": c.within10,
                        "within5": c.within5, "median_diff": c.median_diff, "worst_diff": c.worst_diff,
                        "spearman": c.spearman})
    return out


def _fmt(v: Any, digits: int = 4, why: str = "–") -> str:
    """``v`` with ``digits`` decimals; an empty value says ``why`` it is empty."""
    if v is None:
        return why
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _platform(label: str | None, pid: str | None) -> str:
    """A platform as a person reads it: what it is, then its short id in code (the id alone when unknown)."""
    return f"{label} `{pid}`" if label else f"`{pid}`"


def render_markdown(rep: dict[str, Any], plots: dict[str, list[str]] | None = None) -> str:
    t = rep["totals"]
    lines = [f"# Cost report — {rep['database']}" + (f", campaign {rep['campaign']}" if rep["campaign"] else ""), "",
             f"- profiling hours: **{t['profiling_hours']:.4f}** ({t['measurements_charged']} measurements charged, "
             f"{_fmt(t['cost_per_measurement_s'], 2)} s each; the ledger charges each measurement once, to whoever "
             "made it)",
             f"- engine seconds (fit, evaluate, query, export): {t['engine_seconds']:.1f}; overhead share "
             f"{_fmt(None if t['overhead_share'] is None else 100 * t['overhead_share'], 1)} %", ""]
    if rep.get("platforms"):
        lines += ["## Platforms", "", markdown_table(
            ["platform", "id", "device", "torch"],
            [[p["label"], f"`{p['id']}`", p["device"], p["torch"] or "–"] for p in rep["platforms"]]), ""]
    lines += ["## Campaigns", "",
              "Device hours are each campaign's bill: every measurement it used, the validation set included (a "
              "holdout campaign measures it before the first fit). The learning curves' hours axis counts the same.",
              "", markdown_table(CAMPAIGN_COLUMNS, [_campaign_row(c) for c in rep["campaigns"]])]
    flagged = [w for c in rep["campaigns"] for w in c["noise_warnings"]]
    if flagged:
        lines += ["", "Targets above the noise floor (met by chance at best, never verified):", ""]
        lines += [f"- {w}" for w in flagged]
    lines += _clock_section(rep) + _source_section(rep) + _noise_section(rep) + _device_section(rep)
    lines += ["", "## Hours by activity", "", markdown_table(
        ["activity", "rows", "hours"], [[r["activity"], r["rows"], f"{r['hours']:.4f}"] for r in rep["by_activity"]])]
    lines += ["", "## Hours by platform, family and activity", "", markdown_table(
        ["platform", "family", "activity", "rows", "hours"],
        [[_platform(r.get("platform_label"), r["platform"]), r["family"], r["activity"], r["rows"],
          f"{r['hours']:.4f}"] for r in rep["by_platform_family"]])]
    for name, files in (plots or {}).items():
        lines += ["", f"## {name}", ""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in files]
    return "\n".join(lines) + "\n"


CAMPAIGN_COLUMNS = ["campaign", "family", "platform", "strategy", "model", "state", "iterations", "samples",
                    "device h (bill)", "of which validation h", "cost/sample s", "overhead %", "ρ", "MAPE %",
                    "±10 %", "±10 % ceiling", "noise floor"]


def _campaign_row(c: dict[str, Any]) -> list[Any]:
    ov = None if c["overhead_share"] is None else 100 * c["overhead_share"]
    acc = None if c["acc10"] is None else 100 * c["acc10"]
    ceil = "not measured" if c["noise_acc10"] is None else f"{100 * c['noise_acc10']:.1f}"
    return [c["name"], c["family"], _platform(c.get("platform_label"), c["platform"]), c["strategy"], c["model"],
            c["state"], c["iterations"], c["samples"], f"{c['profiling_hours']:.4f}", f"{c['validation_hours']:.4f}",
            _fmt(c["cost_per_sample_s"], 2, "no sample yet"), _fmt(ov, 1, "nothing charged"),
            _fmt(c["spearman"], why="not fitted yet"), _fmt(c["mape"], 2, "not fitted yet"),
            _fmt(acc, 1, "not fitted yet"), ceil, describe_floor(c["noise_floor"])]


def _clock_section(rep: dict[str, Any]) -> list[str]:
    timed = [c for c in rep["campaigns"] if c["device_wall_s"] > 0]
    if not timed:
        return []
    rows = [[c["name"], f"{c['device_wall_s']:.1f}", f"{c['device_busy_s']:.1f}", f"{c['device_idle_s']:.1f}",
             _fmt(None if c["idle_share"] is None else 100 * c["idle_share"], 1)] for c in timed]
    return ["", "## Device time", "",
            "What the runs cost in the device's wall clock, as a rented device is paid: busy while it measured the "
            "campaign's blocks, idle while it waited for the engine (fits, queries; pipelined runs choose the next "
            "batch while the device measures, so it waits only where a step outlasts a batch). A replayed table's "
            "runs count on a virtual clock: each block its recorded or modelled cost, each engine step its real "
            "seconds.", "",
            markdown_table(["campaign", "wall s", "busy s", "idle s", "idle %"], rows)]


def _source_section(rep: dict[str, Any]) -> list[str]:
    with_sources = [c for c in rep["campaigns"] if c["sources"]]
    if not with_sources:
        return []
    rows = [[c["name"], src["name"], src["kind"], src["rows"], _fmt(src["agreement"], 3, "not judged yet"),
             "yes" if src["used"] else f"no ({src['reason']})", c["final_model"] or "not fitted yet",
             _fmt(c["transfer_gain"], 4, "too few rows to compare")]
            for c in with_sources for src in c["sources"]]
    return ["", "## Transfer sources", "",
            "Other platforms a campaign learned from: agreement (Spearman) with the probe set it measured "
            "first, whether the source was used, and the out-of-fold ρ gain of the transfer model over the "
            "plain one at the last iteration.", "",
            markdown_table(["campaign", "source", "kind", "rows", "agreement", "used", "final model", "ρ gain"], rows)]


def _noise_section(rep: dict[str, Any]) -> list[str]:
    if not rep["noise"]:
        return ["", "Noise ceiling: not measured (`python -m acquisition remeasure` measures it)."]
    rows = [[_platform(r.get("platform_label"), r["platform"]), r["family"], r["n"], f"{100 * r['within10']:.1f} %",
             f"{100 * r['within5']:.1f} %", f"{100 * r['median_diff']:.1f}", f"{100 * r['worst_diff']:.0f}",
             _fmt(r["spearman"])] for r in rep["noise"]]
    return ["", "## Noise ceiling", "",
            "Stored blocks measured again in a fresh process (`python -m acquisition remeasure`): no model can "
            "be trusted closer than the measurement repeats itself.", "",
            markdown_table(["platform", "family", "re-measured", "within ±10 %", "within ±5 %", "median diff. %",
                            "worst %", "ρ"], rows)]


def _device_section(rep: dict[str, Any]) -> list[str]:
    if not rep.get("devices"):
        return []
    rows = [[_platform(r.get("platform_label"), r["platform"]), r["actor"], r["host"] or "–", r["measurements"],
             f"{r['hours']:.4f}", f"{r.get('idle_hours', 0.0):.4f}", f"{r['platform_lost_hours']:.4f}"]
            for r in rep["devices"]]
    return ["", "## Fleet devices", "",
            "Measurements taken by each device actor of a Ray fleet (`--ray-address`), the hours it spent in a "
            "run without measuring (waiting for the coordinator or for work: `device_idle`), and the device time "
            "each platform lost on actors that died mid-block (charged as `lost_profile`; those blocks were "
            "measured again elsewhere).", "",
            markdown_table(["platform", "device actor", "host", "measurements", "device h", "idle h",
                            "platform's lost h"], rows)]


def _plots(store: Any, rep: dict[str, Any], out_dir: str) -> dict[str, list[str]]:
    """Each campaign's learning curve and predicted-vs-measured plot (PNG); returns the files per campaign."""
    import matplotlib

    matplotlib.use("Agg")
    out: dict[str, list[str]] = {}
    for c in rep["campaigns"]:
        files = []
        if c["learning_curve"]:
            files.append(_learning_curve_png(c, out_dir))
        pairs = _predicted_pairs(store, c)
        if pairs is not None:
            files.append(_predicted_png(c, *pairs, out_dir))
        if files:
            out[c["name"]] = files
    return out


def _save(fig: Any, path: str) -> str:
    import matplotlib.pyplot as plt

    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path


def _learning_curve_png(c: dict[str, Any], out_dir: str) -> str:
    """Verified ρ with its bounds and MAPE against the campaign's bill."""
    import matplotlib.pyplot as plt
    import numpy as np

    lc = c["learning_curve"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    h = [p["profiling_s"] / 3600 for p in lc]  # the bill at each iteration, as in the campaigns table

    def col(k: str) -> np.ndarray:  # NULL (no verification rows yet) -> NaN: not drawn
        return np.array([np.nan if p[k] is None else p[k] for p in lc], dtype=float)

    for ax in (a1, a2):
        if c["validation_hours"] > 0:
            ax.axvspan(0, c["validation_hours"], color="0.85", lw=0,
                       label="validation set, measured before the first fit")
        ax.set_xlim(0, max(max(h), c["profiling_hours"]) * 1.05 or 1e-6)
        ax.set_xlabel("device hours (the campaign's bill, validation included)")
    a1.plot(h, col("spearman"), marker="o", label=f"verified ρ ({c['verification']})")
    a1.fill_between(h, col("spearman_lo"), col("spearman_hi"), alpha=0.2,
                    label="one-sided 95 % bounds (the stop rule reads the lower)")
    a1.axhline(c["target_spearman"], color="k", ls="--", lw=1, label="target")
    a1.set_ylabel("Spearman ρ")
    a2.plot(h, col("mape"), marker="o", color="C1", label="MAPE")
    a2.set_ylabel("MAPE (%)")
    handles, labels = a1.get_legend_handles_labels()
    fig.legend([*handles, *a2.get_legend_handles_labels()[0][-1:]], [*labels, "MAPE"], loc="lower center",
               ncol=5, fontsize="small", frameon=False)  # below the plots: it hides no point
    fig.suptitle(f"{c['name']}: {c['family']} on {c.get('platform_label') or c['platform']}, "
                 f"{c['strategy']} + {c['model']}", fontsize="medium")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, os.path.join(out_dir, f"{c['name']}_learning_curve.png"))


def _predicted_pairs(store: Any, c: dict[str, Any]) -> tuple[Any, Any, str] | None:
    """(measured, predicted, what) for the campaign's bundle: its validation set (holdout), else the out-of-fold
    predictions of its randomly drawn training rows (cv); ``None`` where there is neither."""
    import numpy as np

    if not c["bundle"] or not os.path.exists(c["bundle"]):
        return None
    from surrogates import BundleError, load_bundle

    try:
        pred = load_bundle(c["bundle"])
    except BundleError:
        return None
    val = store.members(c["name"], "validation", status="ok")
    if val:
        return np.array([r["min_ms"] for r in val]), pred.predict([r["config"] for r in val]), "validation"
    if getattr(pred.model, "oof_log_", None) is None:
        return None
    # cv: each randomly drawn training row as predicted by the fold model that did not see it
    rows = store.members(c["name"], "train", status="ok")
    if len(rows) != len(pred.model.oof_log_):
        return None
    keep = np.array([r.get("drawn") == "random" for r in rows])
    if keep.sum() < 3:
        return None
    return (np.array([r["min_ms"] for r in rows])[keep], pred.model.oof_latency_[keep],
            "out-of-fold, randomly drawn rows")


def _predicted_png(c: dict[str, Any], y: Any, p: Any, what: str, out_dir: str) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.loglog(y, p, ".", alpha=0.6)
    lim = [min(y.min(), p.min()) * 0.8, max(y.max(), p.max()) * 1.25]
    ax.plot(lim, lim, "k--", lw=1)
    ax.fill_between(lim, [v * 0.9 for v in lim], [v * 1.1 for v in lim], color="k", alpha=0.08, label="±10 %")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{c['name']}: {what} ({len(y)})")
    ax.legend()
    fig.tight_layout()
    return _save(fig, os.path.join(out_dir, f"{c['name']}_predicted_vs_measured.png"))


def write_report(store: Any, out_dir: str, *, fmt: str = "md", campaign: str | None = None) -> list[str]:
    """Write the report (and the PNGs) into ``out_dir``; returns the files written."""
    if fmt not in ("md", "json", "html"):
        raise ValueError(f"format {fmt!r} is not allowed: expected md, json or html")
    os.makedirs(out_dir, exist_ok=True)
    rep = build_report(store, campaign)
    plots = _plots(store, rep, out_dir)
    rep["plots"] = {k: [os.path.basename(f) for f in v] for k, v in plots.items()}
    path = os.path.join(out_dir, f"report.{fmt}")
    if fmt == "json":
        text = json.dumps(rep, indent=2, default=str)
    elif fmt == "md":
        text = render_markdown(rep, plots)
    else:
        text = _html(render_markdown(rep, plots))
    with atomic_write(path) as fh:
        fh.write(text)
    return [path] + [f for v in plots.values() for f in v]


_NUMBER = re.compile(r"^[≤≥<>~+\-–]?\s*[\d.,]+(\s*(%|h|s))?$|^[–-]$")

#: Tables fill at most the page width and their cells wrap between words (long platform names), so no table runs
#: off a 1280 px page; a wide table (many columns) gets a smaller font, and a container scrolls as a last resort.
STYLE = """
body{font-family:system-ui,sans-serif;font-size:15px;line-height:1.4;max-width:1180px;margin:1.5em auto;
     padding:0 16px;color:#222}
h1{font-size:1.5em;overflow-wrap:anywhere}
h2{font-size:1.2em;margin-top:1.6em}
.table{max-width:100%;overflow-x:auto;margin:0.6em 0}
table{border-collapse:collapse;max-width:100%;font-size:14px}
table.wide{font-size:12.5px;width:100%}
table.wide th{font-size:11.5px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word;
      hyphens:auto}
th{background:#f3f3f3;font-weight:600}
td.num{text-align:right;white-space:nowrap}
code{font-size:0.85em;color:#555;white-space:nowrap}
img{max-width:100%;height:auto;display:block;margin:0.8em 0}
""".strip()


def _html(md: str) -> str:
    """The report's Markdown as one HTML page (markdown-it-py, CommonMark with tables), with a stylesheet that
    keeps every table within the page (:data:`STYLE`): numeric cells right-aligned, tables of more than eight
    columns in the smaller font, each table in a container that scrolls as a last resort."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(md)
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            head = next(j for j in range(i, len(tokens)) if tokens[j].type == "tr_close")
            if sum(tokens[j].type == "th_open" for j in range(i, head)) > 8:
                tok.attrSet("class", "wide")
        elif tok.type == "td_open" and _NUMBER.match(tokens[i + 1].content.strip()):
            tok.attrSet("class", "num")
    attrs = parser.renderer.renderAttrs
    rules = parser.renderer.rules
    rules["table_open"] = lambda toks, idx, opts, env: f'<div class="table"><table{attrs(toks[idx])}>\n'
    rules["table_close"] = lambda toks, idx, opts, env: "</table></div>\n"
    body = parser.renderer.render(tokens, parser.options, {})
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Cost report</title>"
            f"<style>{STYLE}</style></head><body>\n" + body + "</body></html>\n")
