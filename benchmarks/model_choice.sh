#!/usr/bin/env bash
# Which default model (issue 27, item 6): the default configuration with each single model and with model=auto,
# 10 seeds, on two categorical tables (whole networks from 21 categorical layer choices: benchmarks/
# categorical_table.py) and the two TF-NAS block tables (there linear, which plateaus near rho 0.92 on the TF-NAS
# blocks offline, is left out). Judged on never-seen rows; samples to the target (oracle:
# where the never-seen rho first met it; claimed: the verified stop). Writes benchmarks/out/model/.
#   bash benchmarks/model_choice.sh [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-10}
OUT=benchmarks/out/model
TFNAS=${TFNAS:-../shared/data/tfnas_mbconv_latency.csv}
CAT=$OUT/tfnas-networks.csv
mkdir -p "$OUT"
[ -f "$CAT" ] || python benchmarks/categorical_table.py --tfnas "$TFNAS" --out "$CAT"
LAYERS=$(python -c "print(','.join(f'L{i:02d}' for i in range(1, 22)))")
for dev in xeon_gold6130_bs1_1thread_pytorch1.1 titan_rtx_bs32_pytorch1.1; do
  short=${dev%%_*}
  python -m studies compare --csv "$CAT" --params "$LAYERS" --where device=$dev --name cat-$short \
    --arms default:gbt,default:linear,default:auto --seeds "$SEEDS" --target-spearman 0.95 --budget-samples 300 \
    --batch-size 20 --initial-size 20 --jobs 2 --db $OUT/cat-$short.sqlite --out $OUT/cat-$short
done
for dev in xeon_gold6130_bs1_1thread_pytorch1.1 titan_rtx_bs32_pytorch1.1; do
  short=${dev%%_*}
  python -m studies compare --csv "$TFNAS" --params input_hw,cin,mid_channels,se_channels,cout,kernel,stride,act \
    --where device=$dev --name tfnas-$short --arms ${TFNAS_ARMS:-default:gbt,default:gp,default:auto} \
    --seeds "$SEEDS" --target-spearman 0.98 --budget-samples 500 --batch-size 20 --initial-size 20 --jobs 2 \
    --db $OUT/tfnas-$short${TAG:-}.sqlite --out $OUT/tfnas-$short${TAG:-}
done
