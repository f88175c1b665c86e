"""``predict`` of one configuration in a fresh process (issue 30: cold ``predict`` <= 1.5 s).

Times, alternately and each in a fresh process (after one untimed run of each to warm the file cache):

- ``lean``: ``python -m acquisition predict --bundle B --config C``, which predicts from the bundle's lean form
  (:mod:`surrogates.lean`: numpy only);
- ``full``: the same prediction from the bundle loaded in full (skops and scikit-learn), as ``predict`` did before.

The bundle is ``--bundle``, or the one the README's first command exports (``python -m acquisition run`` in a
temporary directory: live profiling on this CPU, about half a minute). Prints each run and the medians; the two
predictions must agree to 1e-9.

    python benchmarks/predict_cold.py --runs 7        # alone on the machine
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
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    bundle = args.bundle
    if bundle is None:
        d = tempfile.mkdtemp(prefix="predict-cold-")
        bundle = os.path.join(d, "default.bundle")
        subprocess.run([sys.executable, "-m", "acquisition", "run", "--db", os.path.join(d, "a.sqlite"),
                        "--bundle", bundle, "--no-progress"], cwd=ROOT, check=True, capture_output=True)
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


if __name__ == "__main__":
    main()
