#!/usr/bin/env bash
# Runs on the device machine (the `run` tool), from the repository root, with .devcarry.tar.xz carried
# (tools/device_prepare.sh): every GPU suite, then batched decode throughput (dsa bench --batch) on the
# Llama-3.1-8B shape. Files under $OUT:
#   tests.log    every GPU suite, one process each (summary lines on stdout)
#   model.log    cuda_bench model: decode at 4K under each programmatic-launch mode (kernels/launch.h)
#   batch.json   dsa bench: tg16 at depths 4096 and 32768, batches 1, 4 and 16, full and quest B=4096
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
shape=models/shapes/llama-3.1-8b.json

run_gpu_suites
grep -E '^  [a-z0-9_]+ +(batched|quest|nsa|window|oracle)|^  (quest|nsa|window|oracle)' "$OUT/tests.log" | head -20

timeout 150 .devcarry/cuda_bench model --prefill 4096 --depth 4096 >"$OUT/model.log" 2>&1
grep -E "decode|prefill" "$OUT/model.log"

timeout 300 .devcarry/dsa bench --random-weights $shape -p none -n 16 --depth 4096,32768 --attn full,quest \
    --budget 4096 --batch 1,4,16 -r 2 --device cuda -o json >"$OUT/batch.json" 2>/tmp/batch.err
echo "batch exit $?"; grep -v "repetitions" /tmp/batch.err | tail -12
python3 - "$OUT/batch.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1])):
    print(f"{r['attn']:6} batch {r['batch']:3} {r['test']:14} {r['avg_ts']:9.1f} t/s  {r['ms_per_token']:.3f} ms/tok  "
          f"{r['gbps']:.0f} GB/s")
PY
