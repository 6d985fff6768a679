#!/usr/bin/env bash
# Runs on the device machine (the `run` tool, carry [".devcarry.tar.xz"] from tools/device_prepare.sh):
# every GPU suite (tests.log; the sparse ones' per-policy lines on stdout), the attention-step benchmark of
# every policy at 32K and 128K (quest with the preset's gqa=sum and with gqa=softmax), end-to-end decode at
# 128K (full vs quest), the decode step at 4K, and an Nsight Compute look at the score and selection
# kernels. Logs under $OUT. cuda_bench's stdout is line-buffered (stdbuf) so that a run cut by its timeout
# still leaves its finished rows.
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
run_gpu_suites
grep -E 'steps > 1e-2|batched full' "$OUT/tests.log" | grep -v ' 0 of ' | head -30
sed 's/"sum"/"softmax"/' configs/quest.json >/tmp/quest_softmax.json
timeout 150 stdbuf -oL .devcarry/cuda_bench attn --ctx 32768 --attn full,quest,/tmp/quest_softmax.json,nsa \
    --budget 2048 2>&1 | tee "$OUT/sparse.log"
timeout 150 stdbuf -oL .devcarry/cuda_bench attn --ctx 131072 --attn full,quest,/tmp/quest_softmax.json,nsa \
    --budget 4096 2>&1 | tee -a "$OUT/sparse.log"
timeout 200 .devcarry/dsa bench --random-weights models/shapes/llama-3.1-8b.json -p none -n 16 --depth 131072 \
    -r 2 --device cuda -o md --attn full,quest --budget 4096 2>&1 | tee "$OUT/e2e.log"
timeout 120 .devcarry/cuda_bench model --prefill 4096 --depth 4096 2>&1 | grep decode | tee "$OUT/model.log"
for k in quest_score_kernel page_select_kernel; do
    timeout 100 "$NCU" --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
        --section WarpStateStats --section MemoryWorkloadAnalysis \
        -k "regex:$k" --launch-skip 30 --launch-count 1 .devcarry/cuda_bench attn --ctx 131072 --attn quest \
        --budget 4096 >"$OUT/ncu_$k.txt" 2>&1
    echo "== $k"; grep -E 'Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Compute \(SM\)|Stall|L2 Hit|Waves' \
        "$OUT/ncu_$k.txt" | sed 's/  */ /g'
done
