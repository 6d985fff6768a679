#!/usr/bin/env bash
# Runs on the device machine: Nsight Compute (full set) on one causal prefill-attention launch of each given
# tile variant (`cuda_bench prefill-attn`, one layer at --ctx, default 8192), for what bounds the kernel:
# shared-memory vs tensor-pipe throughput, stalls, occupancy. Arguments: variants (default 3 4).
# Logs under $OUT: ncu_prefill_v<variant>.txt (sections), and a short summary on stdout.
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
ctx=${CTX:-8192}
for v in "${@:-3 4}"; do
    # cuda_bench prefill-attn times each variant with 5 launches (2 warm-up), variants in order.
    timeout 150 "$NCU" --clock-control none --set full -k regex:prefill_attention_kernel --launch-skip $((5 * v + 2)) \
        --launch-count 1 -o "/tmp/rep_prefill_$v" -f .devcarry/cuda_bench prefill-attn --ctx "$ctx" >/dev/null 2>&1
    "$NCU" --import "/tmp/rep_prefill_$v.ncu-rep" --print-details all >"$OUT/ncu_prefill_v$v.txt" 2>&1
    echo "== variant $v"
    grep -E 'Duration|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Shared Memory|L1/TEX Hit|Issue Slots|Executed Ipc A|Pipe|Bank' \
        "$OUT/ncu_prefill_v$v.txt" | sed 's/  */ /g' | head -30
done
