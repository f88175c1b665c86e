"""±10 % accuracy benchmark: models against the measurement's own ceiling, on this CPU and on the TF-NAS table.

Data (alone on the machine, about 25 minutes per family; ``benchmarks/accuracy_data.sh``): per family 2,400
Sobol configurations profiled with the adaptive protocol, then 400 of them drawn at random and re-measured in a
fresh process with ``python -m acquisition remeasure`` (stored as repeats). Then:

    python benchmarks/accuracy_bench.py --dir benchmarks/out/accuracy

Sections (``--sections``):

- ``live``: per family, the re-measured rows are the test set (their repeats give the noise ceiling: the share of
  those blocks whose two measurements agree within ±10 %), the other rows the training pool; each model is
  fitted on ``--train`` rows drawn from the pool (``--seeds`` draws) and scored on the test set: ±10 % accuracy
  (acc10), Spearman ρ and MAPE, medians over the draws; ``acc10_repeat`` scores the same predictions against the
  second measurement of the test blocks. Also per third of the test blocks by latency: the ceiling and the
  model's acc10 there. ``--encoders 1,2`` compares feature-encoder versions.
- ``tfnas``: the shared TF-NAS table, each device: ``--tfnas-train`` random rows to train, the rest to test.
- ``speed``: fit on 2,000 ``mbconv`` rows and ``predict_dist`` on 100,000 candidates (median of 3), per model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from surrogate_bench import load_tfnas, seeded, tfnas_xy, time_models  # noqa: E402

from acquisition.fitting import load_dataset  # noqa: E402
from acquisition.noise import noise_ceiling  # noqa: E402
from acquisition.store import Store  # noqa: E402
from profiler.families import get_family  # noqa: E402
from surrogates import FeatureEncoder  # noqa: E402
from surrogates.metrics import accuracy_within, mape, spearman  # noqa: E402


def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"acc10": accuracy_within(y, p, 0.1), "spearman": spearman(y, p), "mape": mape(y, p)}


def median_scores(runs: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["acc10_range"] = [min(r["acc10"] for r in runs), max(r["acc10"] for r in runs)]
    return out


def section_live(folder: str, families: list[str], models: list[str], sizes: list[int], seeds: int,
                 encoders: list[int]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for fam_name in families:
        db = os.path.join(folder, f"{fam_name}.sqlite")
        if not os.path.isfile(db):
            print(f"  {fam_name}: {db} missing, skipped", file=sys.stderr)
            continue
        fam = get_family(fam_name)
        with Store(db, readonly=True) as store:
            ds = load_dataset(store, fam_name)
            second: dict[str, float] = {}
            for r in store.repeats(family=fam_name, platform=ds.platform, protocol=ds.protocol):
                second.setdefault(r["key"], r["min_ms"])
            repeated = set(second)
            ceiling = noise_ceiling(store, fam_name, platform=ds.platform, protocol=ds.protocol)
        if ceiling is None:
            print(f"  {fam_name}: nothing re-measured (python -m acquisition remeasure), skipped", file=sys.stderr)
            continue
        test = np.asarray([i for i, k in enumerate(ds.keys) if k in repeated])
        pool = np.asarray([i for i, k in enumerate(ds.keys) if k not in repeated])
        y = ds.latency_ms
        y2 = np.asarray([second[ds.keys[i]] for i in test])
        thirds = np.quantile(y[test], [1 / 3, 2 / 3])
        size = np.digitize(y[test], thirds)  # 0: the smallest third of the test blocks, 2: the largest
        agree = np.abs(y2 / y[test] - 1) <= 0.1 + 1e-12
        print(f"  {fam_name}: {len(ds)} measurements, test {len(test)} re-measured, pool {len(pool)}; "
              f"{ceiling.describe()}", file=sys.stderr)
        out: dict[str, Any] = {"n": len(ds), "test": len(test), "pool": len(pool), "ceiling": ceiling.as_dict(),
                               "ceiling_by_third": [float(agree[size == k].mean()) for k in range(3)],
                               "thirds_ms": [float(x) for x in thirds], "models": {}}
        print(f"    ceiling by third of latency (< {thirds[0]:.2f} ms, < {thirds[1]:.2f} ms, above): "
              + ", ".join(f"{100 * a:.1f} %" for a in out["ceiling_by_third"]), file=sys.stderr)
        for version in encoders:
            X = FeatureEncoder(fam, version=version).transform(ds.configs, validated=True)
            for name in models:
                for n in sizes:
                    n_eff = min(n, len(pool))
                    runs = []
                    for s in range(seeds):
                        tr = np.random.default_rng(s).permutation(pool)[:n_eff]
                        p = seeded(name, s).fit(X[tr], y[tr]).predict(X[test])
                        hit = np.abs(p / y[test] - 1) <= 0.1 + 1e-12
                        runs.append({**score(y[test], p), "acc10_repeat": accuracy_within(y2, p, 0.1),
                                     **{f"acc10_third{k}": float(hit[size == k].mean()) for k in range(3)}})
                    m = median_scores(runs)
                    out["models"][f"{name}@v{version}/{n_eff}"] = m
                    print(f"    {name:<12} encoder v{version} {n_eff:5d} rows: acc10 {100 * m['acc10']:5.1f} % "
                          f"[{100 * m['acc10_range'][0]:.1f}-{100 * m['acc10_range'][1]:.1f}] (against the "
                          f"repeat {100 * m['acc10_repeat']:.1f} %; by third "
                          + "/".join(f"{100 * m[f'acc10_third{k}']:.0f}" for k in range(3))
                          + f")  rho {m['spearman']:.4f}  MAPE {m['mape']:5.2f} %", file=sys.stderr)
        res[fam_name] = out
    return res


def section_tfnas(n_train: int, models: list[str], seeds: int) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for dev, rows in load_tfnas().items():
        _, X, y = tfnas_xy(rows, "tfnas-" + dev)
        res[dev] = {}
        for name in models:
            runs = []
            for s in range(seeds):
                perm = np.random.default_rng(s).permutation(len(y))
                tr, te = perm[:n_train], perm[n_train:]
                runs.append(score(y[te], seeded(name, s).fit(X[tr], y[tr]).predict(X[te])))
            m = median_scores(runs)
            res[dev][name] = m
            print(f"  {dev:<38} {name:<12} acc10 {100 * m['acc10']:5.1f} % [{100 * m['acc10_range'][0]:.1f}-"
                  f"{100 * m['acc10_range'][1]:.1f}]  rho {m['spearman']:.4f}", file=sys.stderr)
    return res


def section_speed(folder: str, models: list[str]) -> dict[str, Any]:
    fam = get_family("mbconv")
    with Store(os.path.join(folder, "mbconv.sqlite"), readonly=True) as store:
        ds = load_dataset(store, "mbconv")
    idx = np.random.default_rng(0).permutation(len(ds))[:2000]
    enc = FeatureEncoder(fam)
    X, y = enc.transform([ds.configs[i] for i in idx], validated=True), ds.latency_ms[idx]
    cand = fam.space.sample(100_000, seed=0, unique=False)
    res: dict[str, Any] = {}
    for version in (1, 2):
        t0 = time.perf_counter()
        Xc = FeatureEncoder(fam, version=version).transform(cand, validated=True)
        res[f"encode_v{version}_s"] = time.perf_counter() - t0
    print(f"  encode 100,000 mbconv candidates: v1 {res['encode_v1_s']:.2f} s, v2 {res['encode_v2_s']:.2f} s",
          file=sys.stderr)
    res["models"] = time_models(models, X, y, Xc, 3, 0)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.join(ROOT, "benchmarks", "out", "accuracy"))
    ap.add_argument("--families", default="mbconv,resv1,resv2")
    ap.add_argument("--sections", default="live,tfnas,speed")
    ap.add_argument("--models", default="gbt,linear-gbt")
    ap.add_argument("--train", default="500,2000", help="training sizes (comma-separated)")
    ap.add_argument("--encoders", default="2", help="feature-encoder versions to compare (e.g. 1,2)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tfnas-train", type=int, default=500)
    ap.add_argument("--out", default=None, help="JSON output (default DIR/accuracy_bench.json)")
    a = ap.parse_args()
    models, sections = a.models.split(","), a.sections.split(",")
    res: dict[str, Any] = {"models": models, "seeds": a.seeds}
    if "live" in sections:
        print("This CPU (test = re-measured rows)", file=sys.stderr)
        res["live"] = section_live(a.dir, a.families.split(","), models, [int(x) for x in a.train.split(",")],
                                   a.seeds, [int(x) for x in a.encoders.split(",")])
    if "tfnas" in sections:
        print(f"TF-NAS table, {a.tfnas_train} training rows", file=sys.stderr)
        res["tfnas"] = section_tfnas(a.tfnas_train, models, a.seeds)
    if "speed" in sections:
        print("Speed", file=sys.stderr)
        res["speed"] = section_speed(a.dir, models)
    out = a.out or os.path.join(a.dir, "accuracy_bench.json")
    with open(out, "w") as fh:
        json.dump(res, fh, indent=2)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
