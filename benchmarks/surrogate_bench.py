"""Surrogate benchmark: the paper's Table 3 on this CPU and on the shared TF-NAS table, uncertainty quality, speed.

Prints the figures the surrogates issue asks for and writes them as JSON (``--out``). The CPU section needs
profiled data; profile it first, alone on the machine (about 6 minutes per 1,000 configurations):

    for f in mbconv resv1 resv2; do python -m acquisition profile --family $f --n 1000 --sampler random \\
        --seed 0 --device cpu --db benchmarks/out/surrogates.sqlite; done
    python benchmarks/surrogate_bench.py --db benchmarks/out/surrogates.sqlite

Sections (``--sections``, comma-separated):
- ``cpu``: for each family, its ok measurements (min latency) split 70/15/15 train/validation/test as in the
  paper; every registered model fitted on train with its defaults; ρ, ±10 % accuracy and MAPE on validation
  and test. (The paper tunes hyperparameters on validation; our defaults are fixed, so validation is reported
  only as a second held-out view.)
- ``tfnas``: ``../shared/data/tfnas_mbconv_latency.csv``, each device separately: 500 random training rows,
  the rest as test; every model's ρ and ±10 % accuracy.
- ``uncertainty``: for quantile-gbt, ngboost, ngboost-ensemble and rf on every dataset above: coverage of the
  80 % interval on test, and the Spearman between predicted σ and the actual absolute log-error.
- ``speed``: fit on 2,000 rows of the TF-NAS CPU table and ``predict_dist`` on 100,000 candidates of its space,
  seconds per model (median of ``--repeats``); plus the time to encode 100,000 mbconv configurations.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from acquisition.fitting import load_dataset, split_indices  # noqa: E402
from acquisition.store import Store  # noqa: E402
from profiler.families import get_family  # noqa: E402
from profiler.tabular import TabularFamily  # noqa: E402
from surrogates import FeatureEncoder, evaluate, get_model, list_models  # noqa: E402

TFNAS = os.path.join(ROOT, "..", "shared", "data", "tfnas_mbconv_latency.csv")
TFNAS_PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
UNCERTAIN = ["quantile-gbt", "ngboost", "ngboost-ensemble", "rf"]


def seeded(name: str, seed: int):
    m = get_model(name)
    if "random_state" in m.get_params():
        m.set_params(random_state=seed)
    return m


def score_models(X, y, train, tests: dict[str, np.ndarray], seed: int, models: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in models:
        t0 = time.perf_counter()
        m = seeded(name, seed).fit(X[train], y[train])
        fit_s = time.perf_counter() - t0
        out[name] = {"fit_s": fit_s}
        for split, idx in tests.items():
            out[name][split] = evaluate(y[idx], m.predict_dist(X[idx]))
        print(f"    {name:<17} fit {fit_s:6.2f} s   " + "   ".join(
            f"{s}: rho {r['spearman']:.4f} acc10 {100 * r['acc10']:5.1f}% MAPE {r['mape']:5.2f}%"
            for s, r in ((s, out[name][s]) for s in tests)), file=sys.stderr)
    return out


def section_cpu(db: str, families: list[str], seed: int, models: list[str]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    with Store(db, readonly=True) as store:
        for fam_name in families:
            ds = load_dataset(store, fam_name)
            fam = get_family(fam_name)
            X = FeatureEncoder(fam).transform(ds.configs)
            tr, va, te = split_indices(len(ds), seed=seed)
            print(f"  {fam_name}: {len(ds)} measurements on {ds.platform} ({len(tr)}/{len(va)}/{len(te)})",
                  file=sys.stderr)
            res[fam_name] = {"n": len(ds), "platform": ds.platform,
                             "models": score_models(X, ds.latency_ms, tr, {"validation": va, "test": te}, seed,
                                                    models)}
    return res


def load_tfnas() -> dict[str, list[dict[str, str]]]:
    with open(TFNAS, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_dev: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_dev.setdefault(r["device"], []).append(r)
    return by_dev


def tfnas_xy(rows: list[dict[str, str]], name: str):
    fam = TabularFamily.from_rows(name, rows, params=TFNAS_PARAMS)
    X = FeatureEncoder(fam).transform([{p: r[p] for p in TFNAS_PARAMS} for r in rows])
    return fam, X, np.asarray([float(r["latency_ms"]) for r in rows])


def section_tfnas(n_train: int, seed: int, models: list[str]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for dev, rows in load_tfnas().items():
        _, X, y = tfnas_xy(rows, "tfnas-" + dev)
        perm = np.random.default_rng(seed).permutation(len(y))
        train, test = perm[:n_train], perm[n_train:]
        print(f"  {dev}: {len(y)} rows, train {len(train)}, test {len(test)}", file=sys.stderr)
        res[dev] = {"n": len(y), "models": score_models(X, y, train, {"test": test}, seed, models)}
    return res


def section_speed(models: list[str], repeats: int, seed: int) -> dict[str, Any]:
    rows = load_tfnas()["xeon_gold6130_bs1_1thread_pytorch1.1"]
    fam, X, y = tfnas_xy(rows, "tfnas-cpu")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), 2000, replace=False)
    cand = fam.space.sample(100_000, seed=seed, unique=False)
    t0 = time.perf_counter()
    Xc = FeatureEncoder(fam).transform(cand, validated=True)
    enc_tab = time.perf_counter() - t0
    mb = get_family("mbconv")
    mcfg = mb.space.sample(100_000, seed=seed, unique=False)
    t0 = time.perf_counter()
    FeatureEncoder(mb).transform(mcfg, validated=True)
    enc_mb = time.perf_counter() - t0
    print(f"  encode 100,000 candidates: tabular {enc_tab:.2f} s, mbconv (with analytic counts) {enc_mb:.2f} s",
          file=sys.stderr)
    res: dict[str, Any] = {"encode_tabular_s": enc_tab, "encode_mbconv_s": enc_mb,
                           "models": time_models(models, X[idx], y[idx], Xc, repeats, seed)}
    return res


def time_models(models: list[str], X, y, Xc, repeats: int, seed: int) -> dict[str, dict[str, float]]:
    """Median seconds of ``fit(X, y)`` and ``predict_dist(Xc)`` per model over ``repeats`` seeded runs."""
    out: dict[str, dict[str, float]] = {}
    for name in models:
        fits, preds = [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            m = seeded(name, seed + r).fit(X, y)
            fits.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m.predict_dist(Xc)
            preds.append(time.perf_counter() - t0)
        f, p = statistics.median(fits), statistics.median(preds)
        out[name] = {"fit_s": f, "predict_dist_s": p, "total_s": f + p}
        print(f"    {name:<17} fit({len(y):,}) {f:6.2f} s   predict_dist({len(Xc):,}) {p:6.2f} s   total "
              f"{f + p:6.2f} s", file=sys.stderr)
    return out


def _cell(t: dict[str, float]) -> str:
    return f"{t['spearman']:>11.4f} {100 * t['acc10']:>5.1f}%"


def print_tables(res: dict[str, Any]) -> None:
    models = res["models"]
    if "cpu" in res:
        print("\nPaper Table 3 on this CPU (Spearman rho on test; acc10 = share within +-10 %)")
        print(f"{'family':<8}" + "".join(f"{m:>18}" for m in models))
        for fam, r in res["cpu"].items():
            print(f"{fam:<8}" + "".join(_cell(r["models"][m]["test"]) for m in models))
    if "tfnas" in res:
        print("\nTF-NAS table, 500 training rows (Spearman rho on the other rows; acc10)")
        print(f"{'device':<38}" + "".join(f"{m:>18}" for m in models))
        for dev, r in res["tfnas"].items():
            print(f"{dev:<38}" + "".join(_cell(r["models"][m]["test"]) for m in models))
    unc = [(grp, name, r) for key in ("cpu", "tfnas") if key in res for grp, r in res[key].items()
           for name in UNCERTAIN if name in r["models"]]
    if unc:
        print("\nUncertainty on test: coverage of the 80 % interval (target 75-85 %); Spearman(sigma, |log error|)")
        for grp, name, r in unc:
            t = r["models"][name]["test"]
            print(f"  {grp:<38}{name:<18} coverage {100 * t['coverage80']:5.1f}%   "
                  f"rho(sigma, err) {t['sigma_error_spearman']:.3f}")
    if "speed" in res:
        print("\nSpeed: fit on 2,000 rows + predict_dist on 100,000 candidates (median seconds)")
        for name, s in res["speed"]["models"].items():
            print(f"  {name:<18} fit {s['fit_s']:6.2f}   predict_dist {s['predict_dist_s']:6.2f}   "
                  f"total {s['total_s']:6.2f}")
        print(f"  encoding 100,000 candidates: tabular {res['speed']['encode_tabular_s']:.2f} s, mbconv "
              f"{res['speed']['encode_mbconv_s']:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.path.join(ROOT, "benchmarks", "out", "surrogates.sqlite"))
    ap.add_argument("--families", default="mbconv,resv1,resv2")
    ap.add_argument("--sections", default="cpu,tfnas,speed")
    ap.add_argument("--models", default=",".join(list_models()))
    ap.add_argument("--tfnas-train", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out", "surrogate_bench.json"))
    args = ap.parse_args()
    models = args.models.split(",")
    sections = args.sections.split(",")
    res: dict[str, Any] = {"models": models}
    if "cpu" in sections:
        print("Table 3 on this CPU", file=sys.stderr)
        res["cpu"] = section_cpu(args.db, args.families.split(","), args.seed, models)
    if "tfnas" in sections:
        print("TF-NAS table", file=sys.stderr)
        res["tfnas"] = section_tfnas(args.tfnas_train, args.seed, models)
    if "speed" in sections:
        print("speed", file=sys.stderr)
        res["speed"] = section_speed(models, args.repeats, args.seed)
    print_tables(res)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2, default=float)
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
