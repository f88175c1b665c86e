#!/usr/bin/env bash
# Live transfer benchmark (issue 14), on the data of benchmarks/transfer_live_data.sh: the new platform (bfloat16,
# 1 thread, batch 1) replayed from its store (each row's min latency and its real profiling cost), with the three
# float32 platforms of the sources store as sources; 10 seeds, rho 0.99, stop at target. Every campaign runs as
# `default` and `default+transfer`; ratios are paired by seed. Then the no-harm check with the sources' latencies
# shuffled. About 10 minutes per study on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/transfer-live}
for f in ${FAMILIES:-mbconv resv1}; do
  common=(--replay-db "$OUT/$f-target.sqlite" --family "$f" --transfer-db "$OUT/$f-sources.sqlite" --arms default
          --seeds "${SEEDS:-10}" --budget-samples "${BUDGET:-800}" --batch-size 20 --initial-size 20 --stop-at-target
          --target-spearman "${TARGET:-0.99}" --jobs 2 --json)
  python -m studies compare "${common[@]}" --out "$OUT/$f-study" > "$OUT/$f-study.json"
  if [ -z "${NO_SHUFFLE:-}" ]; then
    python -m studies compare "${common[@]}" --transfer-shuffle --out "$OUT/$f-shuffled" > "$OUT/$f-shuffled.json"
  fi
done
