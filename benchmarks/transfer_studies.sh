#!/usr/bin/env bash
# Transfer benchmark on the shared TF-NAS table (issue 14): each device learned with the other as the source,
# at rho 0.95 and 0.98, 10 seeds; then the no-harm check with the source's latencies shuffled. Every arm runs
# as `default` and `default+transfer` (the same engine with transfer on); ratios are paired by seed.
# About 10 minutes per study on 2 cores.  OUT=benchmarks/out/transfer bash benchmarks/transfer_studies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/transfer}
CSV=../shared/data/tfnas_mbconv_latency.csv
XEON=device=xeon_gold6130_bs1_1thread_pytorch1.1
TITAN=device=titan_rtx_bs32_pytorch1.1
common=(--csv "$CSV" --params input_hw,cin,mid_channels,se_channels,cout,kernel,stride,act --latency-col latency_ms
        --arms default --seeds "${SEEDS:-10}" --budget-samples 800 --batch-size 20 --initial-size 20 --stop-at-target
        --jobs 2 --json)
for target in ${TARGETS:-0.95 0.98}; do
  python -m studies compare "${common[@]}" --where "$TITAN" --transfer-where "$XEON" --target-spearman "$target" \
    --out "$OUT/titan-from-xeon-$target" > "$OUT/titan-from-xeon-$target.json"
  python -m studies compare "${common[@]}" --where "$XEON" --transfer-where "$TITAN" --target-spearman "$target" \
    --out "$OUT/xeon-from-titan-$target" > "$OUT/xeon-from-titan-$target.json"
done
if [ -z "${NO_SHUFFLE:-}" ]; then
  python -m studies compare "${common[@]}" --where "$TITAN" --transfer-where "$XEON" --transfer-shuffle \
    --target-spearman 0.98 --out "$OUT/titan-shuffled-0.98" > "$OUT/titan-shuffled-0.98.json"
fi
