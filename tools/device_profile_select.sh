#!/usr/bin/env bash
# Runs on the device machine: Nsight Compute on the sparse selection kernels (quest, budget 4096, 128K
# context): warp stall reasons and per-SASS-instruction samples, for where page_select spends its time.
# Logs under $OUT: ncu_select.txt (sections), sass_select.csv (source page).
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
for k in ${KERNELS:-page_select_kernel quest_score_kernel}; do
    timeout 120 "$NCU" --clock-control none --set full --import-source no -k "regex:$k" --launch-skip 30 --launch-count 1 \
        -o "/tmp/rep_$k" -f .devcarry/cuda_bench attn --ctx 131072 --attn quest --budget 4096 >/dev/null 2>&1
    "$NCU" --import "/tmp/rep_$k.ncu-rep" --print-details all >"$OUT/ncu_$k.txt" 2>&1
    "$NCU" --import "/tmp/rep_$k.ncu-rep" --page source --csv --print-source sass >"$OUT/sass_$k.csv" 2>&1
    echo "== $k"; grep -E 'Duration|DRAM Throughput|Warp Cycles Per Issued|Registers Per|Achieved Occupancy' "$OUT/ncu_$k.txt" | sed 's/  */ /g' | head
done
