#!/usr/bin/env bash
# Runs on the device machine (the `run` tool), from the repository root: trains the bundled model, writes
# its golden logits with HF transformers, then evaluates it with dsa on CUDA (tools/device_eval.sh). Needs
# .train/ (corpus from tools/prepare_corpus.py and the held-out book) and .devcarry.tar.xz
# (tools/device_prepare.sh) carried along.
#   tools/device_train.sh MINUTES [EXTRA train_model.py FLAGS...]
# $OUT gets (8 files, the most that come back): train.log, model.tar.part-* (the model directory and its
# golden logits for tests/data/default_model, split under the 16 MB limit), and tools/device_eval.sh's
# eval.log, passkey.json and ppl.json.
set -uo pipefail
. "$(dirname "$0")/device_env.sh"
minutes=${1:-6}
shift || true
model=/tmp/dsa_train/model
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/train.log"
python tools/train_model.py --corpus .train/corpus --out "$model" --minutes "$minutes" "$@" 2>&1 | tee -a "$OUT/train.log"
(cd tools && python make_default_golden.py "$model" /tmp/dsa_train/golden) 2>&1 | tee -a "$OUT/train.log"
(cd /tmp/dsa_train && tar cf - model golden | split -b 15m - "$OUT/model.tar.part-")

tools/device_eval.sh "$model" full,quest,nsa,window 256,1024
