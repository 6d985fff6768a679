#!/usr/bin/env bash
# Runs on the device machine (the `run` tool), from the repository root, with the binaries and the
# non-system shared libraries they need carried as .devcarry.tar.xz (tools/device_prepare.sh). Usage:
#   tools/device_cuda.sh [tests] [bench] [copy] [attn] [model] [sparse] [e2e]      (default: tests bench)
#     sparse: the attention step of every policy at 32K (quest budget 2048) and 128K (quest budget 4096)
#     e2e:    dsa bench decode at 128K context, full vs quest (budget 4096) vs the nsa preset
# GPU tests run one suite per process (a device fault cannot hide the other suites); logs go to $OUT.
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
what=${*:-tests bench}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"

if [[ " $what " == *" tests "* ]]; then
    for suite in $(.devcarry/dsa_gpu_tests --gtest_list_tests | grep -E '^[A-Za-z0-9_/]+\.$' | tr -d '.'); do
        timeout 300 .devcarry/dsa_gpu_tests --gtest_filter="$suite.*" >"$OUT/test_$suite.log" 2>&1
        echo "$suite: exit $?  $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/test_$suite.log" | tr '\n' ' ')"
        grep -E 'Failure|rel_error|Expected|Which is|DSA_TEST_SEED|error:|^\[  FAILED|^ *[a-z0-9_]+[: (]' "$OUT/test_$suite.log" | head -40
    done 2>&1 | tee "$OUT/tests_summary.txt"
fi
if [[ " $what " == *" bench "* || " $what " == *" copy "* ]]; then .devcarry/cuda_bench copy 2>&1 | tee -a "$OUT/bench.log"; fi
if [[ " $what " == *" bench "* || " $what " == *" attn "* ]]; then .devcarry/cuda_bench attn 2>&1 | tee -a "$OUT/bench.log"; fi
if [[ " $what " == *" bench "* || " $what " == *" model "* ]]; then
    .devcarry/cuda_bench model --shape models/shapes/llama-3.1-8b.json --prefill 32768 --depth 4096 2>&1 | tee -a "$OUT/bench.log"
fi
if [[ " $what " == *" sparse "* ]]; then
    .devcarry/cuda_bench attn --ctx 32768 --attn full,quest,nsa,window --budget 2048 2>&1 | tee -a "$OUT/sparse.log"
    .devcarry/cuda_bench attn --ctx 131072 --attn full,quest,nsa --budget 4096 2>&1 | tee -a "$OUT/sparse.log"
fi
if [[ " $what " == *" e2e "* ]]; then
    rw="--random-weights models/shapes/llama-3.1-8b.json -p none -n 32 --depth 131072 -r 3 --device cuda -o md"
    .devcarry/dsa bench $rw --attn full,quest --budget 4096 2>&1 | tee -a "$OUT/e2e.log"
    .devcarry/dsa bench $rw --attn nsa 2>&1 | tee -a "$OUT/e2e.log"
fi
