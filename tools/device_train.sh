#!/usr/bin/env bash
# Runs on the device machine (the `run` tool), from the repository root: trains the bundled model, writes
# its golden logits with HF transformers, then evaluates it with dsa on CUDA. Needs .train/ (corpus from
# tools/prepare_corpus.py and the held-out book) and .devcarry/ (tools/device_prepare.sh) carried along.
#   tools/device_train.sh MINUTES [EXTRA train_model.py FLAGS...]
# $OUT gets: train.log, model.tar.part-* (the model directory, split under the 16 MB return limit),
# golden.tgz (tests/data/default_model), eval.log and eval.tgz (generate sample, passkey and ppl JSON).
set -uo pipefail
OUT=${OUT:-/tmp/dsa_out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devcarry:${LD_LIBRARY_PATH:-}
minutes=${1:-6}
shift || true
model=/tmp/dsa_train/model
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/train.log"
python tools/train_model.py --corpus .train/corpus --out "$model" --minutes "$minutes" "$@" 2>&1 | tee -a "$OUT/train.log"
(cd "$model/.." && tar cf - model | split -b 15m - "$OUT/model.tar.part-")
(cd tools && python make_default_golden.py "$model" /tmp/dsa_train/golden) 2>&1 | tee -a "$OUT/train.log"
tar czf "$OUT/golden.tgz" -C /tmp/dsa_train golden

ev=/tmp/dsa_train/eval
mkdir -p "$ev"
book=.train/pride-and-prejudice.txt
{
    timeout 60 .devcarry/dsa generate -m "$model" --device cuda -p "It was a bright cold day in April, and" -n 96 -s 1 \
        >"$ev/generate.txt"
    cat "$ev/generate.txt"
    timeout 200 .devcarry/dsa eval passkey -m "$model" --device cuda --text "$book" --ctx 2048,4096,8000 \
        --depth 0,0.25,0.5,0.75,1 --attn full,quest,nsa,window --budget 256,1024 --trials 5 --json >"$ev/passkey.json"
    echo "passkey exit $?"
    timeout 150 .devcarry/dsa eval ppl -m "$model" --device cuda -f "$book" -c 4096 --attn full,quest,nsa,window \
        --budget 256,1024 --chunks 4 --json >"$ev/ppl.json"
    echo "ppl exit $?"
} >"$OUT/eval.log" 2>&1
tar czf "$OUT/eval.tgz" -C /tmp/dsa_train eval
tail -5 "$OUT/eval.log"
