#!/usr/bin/env bash
# Data for the ±10 % accuracy benchmark (benchmarks/accuracy_bench.py): per family 2,400 Sobol configurations
# profiled with the adaptive protocol on one CPU core, then 400 of them re-measured in a fresh process
# (`python -m acquisition remeasure`: the noise ceiling). Alone on the machine: about 25 minutes per family.
# The profiler runs pinned to core 0 (taskset), so that other work on this 2-core machine disturbs it less.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/accuracy}
N=${N:-2400}
mkdir -p "$OUT"
for f in ${FAMILIES:-mbconv resv1 resv2}; do
  taskset -c 0 python -m acquisition profile --family "$f" --n "$N" --sampler sobol --seed 21 --device cpu \
    --db "$OUT/$f.sqlite" --no-progress
done
for f in ${FAMILIES:-mbconv resv1 resv2}; do
  taskset -c 0 python -m acquisition remeasure --family "$f" --n 400 --seed 0 --device cpu --db "$OUT/$f.sqlite" \
    --no-progress
done
