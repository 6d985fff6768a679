#!/usr/bin/env bash
# Runs on the device machine (the `run` tool), from the repository root, with .devcarry.tar.xz carried
# (tools/device_prepare.sh): the GPU tests, then the README's performance measurements. Files under $OUT:
#   tests.log      every GPU suite, one process each (summary lines on stdout)
#   sparse.log     cuda_bench attn: every policy's attention step at 32K (B=2048) and 128K (B=4096)
#   kernels.json   dsa bench --kernels: attention step per policy vs depth (Llama-3.1-8B shape)
#   tg.json        dsa bench: decode tok/s per policy vs depth
#   peer.json      tools/peer_sdpa_bench.py: PyTorch SDPA attention (full and gather + SDPA sparse)
#   ncu.txt        Nsight Compute durations of the selection kernels at 128K
# Plots and tables from the JSON: tools/plot_bench.py kernels.json tg.json peer.json --out docs/img --table
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
shape=models/shapes/llama-3.1-8b.json
depths=8192,32768,65536,131072

run_gpu_suites

timeout 100 stdbuf -oL .devcarry/cuda_bench attn --ctx 32768 --attn full,quest,nsa,window --budget 2048 >"$OUT/sparse.log" 2>&1
timeout 100 stdbuf -oL .devcarry/cuda_bench attn --ctx 131072 --attn full,quest,nsa --budget 4096 >>"$OUT/sparse.log" 2>&1
cat "$OUT/sparse.log"
timeout 150 .devcarry/dsa bench --random-weights $shape --kernels --depth $depths --attn full,quest,nsa \
    --budget 4096 -r 5 --device cuda -o json >"$OUT/kernels.json" 2>/tmp/kernels.err
echo "kernels exit $?"; tail -3 /tmp/kernels.err
timeout 200 .devcarry/dsa bench --random-weights $shape -p none -n 16 --depth 4096,$depths --attn full,quest \
    --budget 4096 -r 2 --device cuda -o json >"$OUT/tg.json" 2>/tmp/tg.err
echo "tg exit $?"; tail -3 /tmp/tg.err
timeout 90 python tools/peer_sdpa_bench.py --shape $shape --depth $depths --budget 4096 --generate-depth none \
    -o "$OUT/peer.json" 2>&1 | tail -3
timeout 60 "$NCU" --clock-control none --section SpeedOfLight -k "regex:page_(keys|select)_kernel" --launch-skip 60 \
    --launch-count 2 .devcarry/cuda_bench attn --ctx 131072 --attn quest --budget 4096 >"$OUT/ncu.txt" 2>&1
grep -E 'page_|Duration' "$OUT/ncu.txt" | sed 's/  */ /g'
