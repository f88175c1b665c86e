#!/usr/bin/env bash
# The device zoo (issue 27): eight platforms of this CPU -- threads (1, 2) x dtype (float32, bfloat16) x input batch
# (1, 4) -- each profiled once on the same Sobol sample of every family, into one store per family, so that every
# platform can be the new device with the seven others as its sources (`run --transfer auto`, or replayed with
# `studies compare --replay-db ... --transfer-db ...`). Then one CSV per family with a `platform_label` column,
# the table `python -m studies transfer --device-col platform_label` learns each platform from the others.
# Alone on the machine (two measurements at once distort each other): at N=150 mbconv took 15 minutes here, resv1 13.
#   bash benchmarks/device_zoo.sh                       # N=200, mbconv and resv1, into benchmarks/out/zoo
#   N=150 bash benchmarks/device_zoo.sh                 # what the design notes report
#   N=400 FAMILIES=resv1 bash benchmarks/device_zoo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/zoo}
N=${N:-200}
SEED=${SEED:-11}
mkdir -p "$OUT"
for f in ${FAMILIES:-mbconv resv1}; do
  for threads in 1 2; do
    for dtype in float32 bfloat16; do
      for batch in 1 4; do
        pin=()
        [ "$threads" = 1 ] && pin=(taskset -c 0)  # one thread: one core, the other left idle
        "${pin[@]}" python -m acquisition profile --family "$f" --n "$N" --seed "$SEED" --sampler sobol \
          --device cpu --threads "$threads" --dtype "$dtype" --input-batch "$batch" --no-progress \
          --db "$OUT/$f.sqlite"
      done
    done
  done
  python - "$OUT/$f.sqlite" "$f" "$OUT/$f-zoo.csv" <<'PY'
"""One CSV of the family's ok measurements: parameters, a readable platform label, min latency (ms)."""
import csv
import json
import sys

from acquisition.store import Store
from profiler.families import get_family

db, family, out = sys.argv[1:4]
fam = get_family(family)
with Store(db, readonly=True) as store:
    label = {}
    for p in store.platforms():
        fp = p["fingerprint"]
        label[p["id"]] = f"t{fp.get('threads')}-{fp.get('dtype', 'float32')}-b{fp.get('batch_size', 1)}"
    rows = list(store.measurements(family=family, status="ok"))
with open(out, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow([*fam.space.names, "platform_label", "latency_ms"])
    for r in rows:
        cfg = json.loads(r["config"]) if isinstance(r["config"], str) else r["config"]
        w.writerow([*[cfg[k] for k in fam.space.names], label[r["platform"]], r["min_ms"]])
print(f"{out}: {len(rows)} rows, platforms {', '.join(sorted(set(label.values())))}")
PY
done
