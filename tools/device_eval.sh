#!/usr/bin/env bash
# Runs on the device machine (the `run` tool), from the repository root: the README's quality evaluation
# of a model on CUDA, with .devcarry.tar.xz (tools/device_prepare.sh) and the held-out book
# (.train/pride-and-prejudice.txt, a copy of ../shared/data/texts/pride-and-prejudice.txt) carried along.
#   tools/device_eval.sh MODEL_DIR ATTN_LIST BUDGET_LIST
# $OUT gets passkey.json and ppl.json (dsa eval --json) and eval.log (progress).
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
model=$1 attn=$2 budgets=$3
book=.train/pride-and-prejudice.txt
{
    timeout 200 .devcarry/dsa eval passkey -m "$model" --device cuda --text "$book" --ctx 2048,4096,8000 \
        --depth 0,0.25,0.5,0.75,1 --attn "$attn" --budget "$budgets" --trials 5 --json >"$OUT/passkey.json"
    echo "passkey exit $?"
    timeout 150 .devcarry/dsa eval ppl -m "$model" --device cuda -f "$book" -c 4096 --attn "$attn" \
        --budget "$budgets" --chunks 4 --json >"$OUT/ppl.json"
    echo "ppl exit $?"
} >"$OUT/eval.log" 2>&1
grep -E "exit|error" "$OUT/eval.log"
