#!/usr/bin/env bash
# Issue 13's benchmarks on this machine's CPU (one thread), alone on the machine (never beside tests):
# block data for each stacked space, one gbt bundle per family, network-level evaluation of 200 random
# networks per space (+10 that calibrate the overhead), prediction speed, and HIL- vs surrogate-guided search.
# Usage: bash benchmarks/nas_bench.sh [OUT]   (default benchmarks/out/nas; takes about an hour)
set -euo pipefail
OUT=${1:-benchmarks/out/nas}
DB=$OUT/nas.sqlite
mkdir -p "$OUT"
for fam in mbconv resv1 resv2; do
  python -m nas blocks --space stacked-$fam --networks 150 --db "$DB" --no-progress
done
python -m nas blocks --space mbv2 --networks 40 --db "$DB" --no-progress
for fam in mbconv resv1 resv2; do
  python -m acquisition fit --db "$DB" --family $fam --model gbt --out "$OUT/$fam.bundle"
done
for fam in mbconv resv1 resv2; do
  python -m nas evaluate --bundle "$OUT/$fam.bundle" --space stacked-$fam --networks 220 --calibrate 20 \
    --db "$DB" --out "$OUT/eval-stacked-$fam" --no-progress
done
python -m nas evaluate --bundle "$OUT/mbconv.bundle" --space mbv2 --networks 220 --calibrate 20 \
  --db "$DB" --out "$OUT/eval-mbv2" --no-progress
python benchmarks/nas_calibration.py "$OUT"
python benchmarks/nas_speed.py "$OUT/mbconv.bundle" "$OUT/resv1.bundle" "$OUT/resv2.bundle"
python -m nas compare --bundle "$OUT/mbconv.bundle" --space stacked-mbconv --trials 60 \
  --calibration "$OUT/eval-stacked-mbconv/calibration.json" --db "$DB" --storage "$OUT/hnq-60.sqlite" \
  --out "$OUT/compare-stacked-mbconv" --no-progress
python benchmarks/nas_hnq.py "$OUT" 60 3
