#!/usr/bin/env bash
# Data for the live transfer benchmark (issue 14): per family, three source platforms of this CPU profiled into
# one store (float32: 1 thread batch 1, 2 threads batch 1, 2 threads batch 4) and the new platform, bfloat16 on
# 1 thread batch 1, profiled into another (the pool the replayed campaigns draw from and are judged on).
# Alone on the machine: about 35 minutes for mbconv and resv1. Then benchmarks/transfer_live.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/transfer-live}
N_SRC=${N_SRC:-400}
N_TGT=${N_TGT:-1500}
mkdir -p "$OUT"
for f in ${FAMILIES:-mbconv resv1}; do
  common=(--family "$f" --sampler sobol --device cpu --no-progress)
  taskset -c 0 python -m acquisition profile "${common[@]}" --n "$N_SRC" --seed 5 --db "$OUT/$f-sources.sqlite"
  python -m acquisition profile "${common[@]}" --n "$N_SRC" --seed 6 --threads 2 --db "$OUT/$f-sources.sqlite"
  python -m acquisition profile "${common[@]}" --n "$N_SRC" --seed 7 --threads 2 --input-batch 4 \
    --db "$OUT/$f-sources.sqlite"
  taskset -c 0 python -m acquisition profile "${common[@]}" --n "$N_TGT" --seed 8 --dtype bfloat16 \
    --db "$OUT/$f-target.sqlite"
  python -m acquisition measurements --db "$OUT/$f-target.sqlite" --family "$f" --csv "$OUT/$f-target.csv"
done
