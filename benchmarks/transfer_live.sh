#!/usr/bin/env bash
# Live transfer benchmark (issue 14), on the data of benchmarks/transfer_live_data.sh: the new platform (bfloat16,
# 1 thread, batch 1) replayed from its store (each row's min latency and its real profiling cost), with the three
# float32 platforms of the sources store as sources; 10 seeds, stop at target. Every campaign runs as `default`
# and `default+transfer`; ratios are paired by seed. Optionally the no-harm check with the sources' latencies
# shuffled (SHUFFLE=1). About 10 minutes per study on 2 cores at rho 0.98.
#   bash benchmarks/transfer_live.sh                                   # mbconv and resv1 at rho 0.98, 400 samples
#   FAMILIES=resv1 TARGET=0.99 BUDGET=600 bash benchmarks/transfer_live.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/transfer-live}
TARGET=${TARGET:-0.98}
for f in ${FAMILIES:-mbconv resv1}; do
  common=(--replay-db "$OUT/$f-target.sqlite" --family "$f" --transfer-db "$OUT/$f-sources.sqlite" --arms default
          --seeds "${SEEDS:-10}" --budget-samples "${BUDGET:-400}" --batch-size 20 --initial-size 20 --stop-at-target
          --target-spearman "$TARGET" --jobs 2 --json)
  python -m studies compare "${common[@]}" --out "$OUT/$f-study-$TARGET" > "$OUT/$f-study-$TARGET.json"
  if [ -n "${SHUFFLE:-}" ]; then
    python -m studies compare "${common[@]}" --transfer-shuffle --out "$OUT/$f-shuffled-$TARGET" \
      > "$OUT/$f-shuffled-$TARGET.json"
  fi
done
