#!/usr/bin/env bash
# Runs on the device machine: Nsight Compute (full set) on one graph-replayed decode-attention launch at 4K
# context (full attention) and on one sparse layer's launch at 128K (quest, budget 4096: a 4096-token list),
# with per-SASS-instruction stall samples, for where the kernel's fixed chain of dependent steps goes.
# Logs under $OUT: ncu_attn_<case>.txt (sections), sass_attn_<case>.csv (source page).
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
profile() {  # name, launches to skip, cuda_bench arguments
    local name=$1 skip=$2
    shift 2
    timeout 150 "$NCU" --clock-control none --set full --import-source no -k regex:decode_attention_kernel \
        --launch-skip "$skip" --launch-count 1 -o "/tmp/rep_$name" -f .devcarry/cuda_bench attn "$@" >/dev/null 2>&1
    "$NCU" --import "/tmp/rep_$name.ncu-rep" --print-details all >"$OUT/ncu_attn_$name.txt" 2>&1
    "$NCU" --import "/tmp/rep_$name.ncu-rep" --page source --csv --print-source sass >"$OUT/sass_attn_$name.csv" 2>&1
    echo "== $name"
    grep -E 'Duration|DRAM Throughput|Warp Cycles Per Issued|Registers Per|Achieved Occupancy' \
        "$OUT/ncu_attn_$name.txt" | sed 's/  */ /g' | head
}
profile full4k 40 --ctx 4096 --attn full
profile quest128k 94 --ctx 131072 --attn quest --budget 4096
