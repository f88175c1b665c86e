"""Paper reproduction studies, runnable by name (``python -m studies reproduce NAME``).

``table3`` — block-level Spearman ρ of each predictor family (the paper's Table 3: Dense NAS = our ``mlp``,
Gradient Boosted = ``gbt``, Linear = ``linear``, Random Forest = ``rf``) per block family and platform, on the
test split of the paper's three-way split (70 / 15 / 15 %, seeded). Two sources:

- **this CPU**: the measurements of ``mbconv``, ``resv1`` and ``resv2`` in a store; a family with fewer than
  ``samples`` ok measurements is first topped up by profiling random configurations live (reusing every stored
  one), so the study runs from an empty database too;
- **a recorded table** (by default ``../shared/data/tfnas_mbconv_latency.csv``), each device separately, with
  the raw parameters as features.

We fit each model with its default hyper-parameters (the paper tuned them on the validation split), so our
figures are a lower bound for a tuned model. Each ρ comes with its bootstrap 95 % interval.

Example:
    >>> sorted(PREDICTORS.values())
    ['gbt', 'linear', 'mlp', 'rf']
    >>> PAPER_TABLE3[("MBConvBlock", "GPU")]["gbt"]
    0.89
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from acquisition.tables import markdown_table

__all__ = ["PAPER_TABLE3", "PREDICTORS", "table3", "table3_markdown"]

log = logging.getLogger("latency_acquisition.studies")

PREDICTORS = {"Dense NAS": "mlp", "Gradient Boosted": "gbt", "Linear": "linear", "Random Forest": "rf"}
BLOCK_NAMES = {"mbconv": "MBConvBlock", "resv1": "ResBlock1", "resv2": "ResBlock2"}
_NA = None
PAPER_TABLE3: dict[tuple[str, str], dict[str, float | None]] = {
    (block, platform): dict(zip(("mlp", "gbt", "linear", "rf"), vals, strict=True))
    for (block, platform), vals in {
        ("MBConvBlock", "ASIC"): (0.79, 0.98, 0.74, 0.97), ("MBConvBlock", "Cloud"): (0.99, 1.00, 0.96, 0.99),
        ("MBConvBlock", "Edge"): (0.97, 0.99, 0.94, 0.97), ("MBConvBlock", "GPU"): (0.88, 0.89, 0.78, 0.90),
        ("ResBlock1", "Cloud"): (0.99, 1.00, 0.97, 0.99), ("ResBlock1", "Edge"): (0.99, 1.00, 0.96, 0.99),
        ("ResBlock1", "GPU"): (0.91, 0.98, 0.93, 0.97), ("ResBlock2", "Cloud"): (1.00, 1.00, 0.97, 0.99),
        ("ResBlock2", "GPU"): (0.95, 0.99, 0.94, 0.98),
    }.items()}
TFNAS_PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
DEFAULT_TABLE = os.path.join("..", "shared", "data", "tfnas_mbconv_latency.csv")


def _score(X: np.ndarray, y: np.ndarray, seed: int, models: Sequence[str]) -> dict[str, dict[str, float]]:
    from acquisition.fitting import split_indices
    from surrogates import evaluate, get_model

    train, _val, test = split_indices(len(y), seed=seed)
    out = {}
    for name in models:
        m = get_model(name)
        if "random_state" in m.get_params():
            m.set_params(random_state=seed)
        m.fit(X[train], y[train])
        r = evaluate(y[test], m.predict_dist(X[test]), ci=True)
        out[name] = {"spearman": r["spearman"], "lo": r["spearman_lo"], "hi": r["spearman_hi"], "mape": r["mape"],
                     "acc10": r["acc10"]}
    return out


def _top_up(db: str, family: str, samples: int, seed: int, device: str) -> None:
    """Profile random configurations of ``family`` until ``db`` holds ``samples`` ok measurements of it."""
    from acquisition.profiling import profile_configs
    from acquisition.store import Store
    from profiler.families import get_family
    from profiler.worker import Profiler

    fam = get_family(family)
    with Store(db) as store, Profiler(device) as prof:
        have = {r["key"] for r in store.measurements(family=family, platform=prof.platform_id, status="ok")}
        if len(have) >= samples:
            return
        todo = fam.space.sample(samples - len(have), method="random", seed=seed, family=family, exclude=have)
        log.warning("table3: profiling %d %s blocks on %s to reach %d samples", len(todo), family, device, samples)
        profile_configs(store, prof, fam, todo)


def table3(*, db: str | None = None, families: Sequence[str] = ("mbconv", "resv1", "resv2"), samples: int = 1000,
           live: bool = True, device: str = "cpu", csv: str | None = DEFAULT_TABLE, seed: int = 0,
           models: Sequence[str] = tuple(PREDICTORS.values())) -> list[dict[str, Any]]:
    """Rows of the reproduced Table 3 (one per block family x platform); see the module docstring."""
    from acquisition.fitting import load_dataset
    from acquisition.store import Store
    from profiler.families import get_family
    from studies.replay import ReplayTable
    from surrogates import FeatureEncoder

    rows: list[dict[str, Any]] = []
    if db is not None:
        for fam_name in families:
            if live:
                _top_up(db, fam_name, samples, seed, device)
            with Store(db, readonly=True) as store:
                ds = load_dataset(store, fam_name)
            n = min(len(ds), samples)
            X = FeatureEncoder(get_family(fam_name)).transform(ds.configs[:n])
            rows.append({"block": BLOCK_NAMES.get(fam_name, fam_name), "platform": f"this CPU ({ds.platform})",
                         "n": n, "models": _score(X, ds.latency_ms[:n], seed, models)})
    if csv is not None:
        if not os.path.isfile(csv):
            log.warning("table3: %s not found; the recorded-table rows are skipped", csv)
        else:
            import csv as _csv

            with open(csv, newline="") as fh:
                devices = sorted({r["device"] for r in _csv.DictReader(fh)})
            for dev in devices:
                t = ReplayTable.from_csv(csv, params=TFNAS_PARAMS, latency_col="latency_ms", where=[f"device={dev}"])
                X = FeatureEncoder(t.family).transform(t.configs, validated=True)
                rows.append({"block": "MBConvBlock", "platform": f"{os.path.basename(csv)}: {dev}", "n": len(t),
                             "models": _score(X, t.latency_ms, seed, models)})
    return rows


def table3_markdown(rows: list[dict[str, Any]]) -> str:
    """Our ρ [95 % interval] per predictor, with the paper's range over its platforms for the same block."""
    models = list(PREDICTORS.items())
    ours = []
    for r in rows:
        cells = []
        for _, m in models:
            s = r["models"].get(m)
            cells.append("not run" if s is None else f"{s['spearman']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]")
        ours.append([r["block"], r["platform"], r["n"], *cells])
    paper = [[block, plat, *(f"{vals[m]:.2f}" for _, m in models)] for (block, plat), vals in PAPER_TABLE3.items()]
    lines = ["# Table 3 reproduced: Spearman ρ of block-level estimates on the test split", "",
             markdown_table(["block", "platform", "n", *(f"{k} (`{v}`)" for k, v in models)], ours),
             "", "The paper's values (its Table 3; ASIC, Cloud, Edge and GPU platforms):", "",
             markdown_table(["block", "platform", *(k for k, _ in models)], paper)]
    return "\n".join(lines) + "\n"
