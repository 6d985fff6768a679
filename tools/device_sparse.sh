#!/usr/bin/env bash
# Runs on the device machine (the `run` tool, carry [".devcarry.tar.xz"] from tools/device_prepare.sh): the
# sparse-decode GPU tests, the attention-step benchmark of every policy at 32K and 128K, end-to-end decode
# at 128K (full vs quest), and an Nsight Compute look at the selection kernels. Logs under $OUT.
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
for s in GpuPageSelect GpuSparseModel; do
    timeout 100 .devcarry/dsa_gpu_tests --gtest_filter="$s.*" >"$OUT/test_$s.log" 2>&1
    echo "$s: exit $? $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/test_$s.log" | tr '\n' ' ')"
    grep -E 'Failure|Expected|Which is|steps > 1e-2' "$OUT/test_$s.log" | grep -v ' 0 of ' | head -20
done
timeout 100 .devcarry/cuda_bench attn --ctx 32768 --attn full,quest,nsa --budget 2048 2>&1 | tee "$OUT/sparse.log"
timeout 100 .devcarry/cuda_bench attn --ctx 131072 --attn full,quest,nsa --budget 4096 2>&1 | tee -a "$OUT/sparse.log"
timeout 200 .devcarry/dsa bench --random-weights models/shapes/llama-3.1-8b.json -p none -n 16 --depth 131072 \
    -r 2 --device cuda -o md --attn full,quest --budget 4096 2>&1 | tee "$OUT/e2e.log"
for k in quest_score_kernel page_select_kernel; do
    timeout 60 "$NCU" --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
        -k "regex:$k" --launch-skip 30 --launch-count 1 .devcarry/cuda_bench attn --ctx 131072 --attn quest \
        --budget 4096 >"$OUT/ncu_$k.txt" 2>&1
    echo "== $k"; grep -E 'Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Compute \(SM\)' "$OUT/ncu_$k.txt" | sed 's/  */ /g'
done
