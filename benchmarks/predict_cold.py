"""``predict`` of one configuration in a fresh process (issue 30: cold ``predict`` <= 1.5 s).

Times, alternately and each in a fresh process (after one untimed run of each to warm the file cache):

- ``lean``: ``python -m acquisition predict --bundle B --config C``, which predicts from the bundle's lean form
  (:mod:`surrogates.lean`: numpy only);
- ``full``: the same prediction from the bundle loaded in full (skops and scikit-learn), as ``predict`` did before.

Then, in this process, both forms' ``predict_dist`` of ``--many`` sampled configurations (median of 3): numpy
walks trees more slowly than scikit-learn, which is why ``predict --csv`` of many rows loads the model in full.

The bundle is ``--bundle``, or the one the README's first command exports (``python -m acquisition run`` in a
temporary directory, with ``--model`` if given: live profiling on this CPU, about half a minute). Prints each
run and the medians; the two predictions must agree to 1e-9.

    python benchmarks/predict_cold.py --runs 7                 # alone on the machine (run's default: auto)
    python benchmarks/predict_cold.py --runs 3 --model gbt     # a gbt committee's bundle
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = {"input_hw": 56, "cin": 24, "cout": 24, "expansion": 3, "kernel": 3, "stride": 1, "se": False,
          "act": "relu"}
FULL = ("import json, sys; from surrogates import load_bundle; p = load_bundle(sys.argv[1]); "
        "c = p.family.validate(p.family.space.coerce(json.loads(sys.argv[2]))); "
        "print(json.dumps({'pred_ms': float(p.predict([c])[0])}))")


def _timed(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {out.stderr.strip()[-300:]}")
    return wall, float(json.loads(out.stdout.strip().splitlines()[-1])["pred_ms"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="a bundle of family mbconv (default: run the README's command to make one)")
    ap.add_argument("--model", help="the model of the run that makes the bundle (default: run's own, auto)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--many", type=int, default=4000, help="configurations predicted in one call (0: skip)")
    args = ap.parse_args()
    bundle = args.bundle
    if bundle is None:
        d = tempfile.mkdtemp(prefix="predict-cold-")
        bundle = os.path.join(d, "default.bundle")
        model = ["--model", args.model] if args.model else []
        subprocess.run([sys.executable, "-m", "acquisition", "run", "--db", os.path.join(d, "a.sqlite"),
                        "--bundle", bundle, "--no-progress", *model], cwd=ROOT, check=True, capture_output=True)
    cfg = json.dumps(CONFIG)
    cmds = {"lean": [sys.executable, "-m", "acquisition", "predict", "--bundle", bundle, "--config", cfg],
            "full": [sys.executable, "-c", FULL, bundle, cfg]}
    for cmd in cmds.values():
        _timed(cmd)  # warm the file cache
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    preds: dict[str, float] = {}
    for i in range(args.runs):
        for name in (("lean", "full") if i % 2 == 0 else ("full", "lean")):
            wall, preds[name] = _timed(cmds[name])
            walls[name].append(wall)
            print(f"run {i + 1} {name}: {wall:.2f} s", flush=True)
    if abs(preds["lean"] - preds["full"]) > 1e-9 * abs(preds["full"]):
        raise SystemExit(f"the lean prediction {preds['lean']!r} differs from the full one {preds['full']!r}")
    for name, w in walls.items():
        print(f"{name}: median {statistics.median(w):.2f} s, range {min(w):.2f}-{max(w):.2f} s over {len(w)} runs")
    print(f"lean / full: {statistics.median(walls['lean']) / statistics.median(walls['full']):.2f}")
    if args.many:
        many(bundle, args.many)


def many(bundle: str, n: int) -> None:
    """Both forms' ``predict_dist`` of ``n`` sampled configurations in this process, one thread."""
    sys.path.insert(0, ROOT)
    from threadpoolctl import threadpool_limits

    from surrogates import load_bundle

    forms = {"lean": load_bundle(bundle, lean=True), "full": load_bundle(bundle)}
    X = forms["full"].encoder.transform(forms["full"].family.space.sample(n, seed=0))
    secs = {}
    with threadpool_limits(1):
        for name, pred in forms.items():
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                pred.model.predict_dist(X)
                times.append(time.perf_counter() - t0)
            secs[name] = statistics.median(times)
    print(f"{type(forms['full'].model).__name__} of {forms['full'].manifest['model']['name']}, predict_dist of {n} "
          f"configurations: lean {secs['lean']:.2f} s, full {secs['full']:.2f} s (lean / full "
          f"{secs['lean'] / secs['full']:.1f})")


if __name__ == "__main__":
    main()
