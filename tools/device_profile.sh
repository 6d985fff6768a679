#!/usr/bin/env bash
# Runs on the device machine: Nsight Compute on the decode-attention kernels at 4K and 32K context (one
# graph-replayed launch each), for DRAM throughput, duration and occupancy. Logs under $OUT.
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
for ctx in 4096 32768; do
    for k in decode_attention_kernel attention_merge_kernel; do
        "$NCU" --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
            -k "regex:$k" --launch-skip 40 --launch-count 1 .devcarry/cuda_bench attn --ctx $ctx >"$OUT/ncu_${k}_$ctx.txt" 2>&1
        echo "== $k ctx $ctx"
        grep -E 'Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Theoretical Occupancy|Block Limit (Shared|Registers)|Compute \(SM\)' "$OUT/ncu_${k}_$ctx.txt" | sed 's/  */ /g'
    done
done
