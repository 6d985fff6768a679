#!/usr/bin/env bash
# The main job in one command: set up, build, and generate text from the bundled default model.
# Extra arguments go to `dsa generate` (e.g. tools/run.sh -p "Once upon a time" -n 64); without -p/-f a
# default prompt is used. Sampling settings come from the model's generation_config.json.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh dsa
has_prompt=0
has_n=0
for a in "$@"; do
    case "$a" in
        -p | --prompt | -f | --file | --prompt=* | --file=*) has_prompt=1 ;;
        -n | --n-predict | --n-predict=*) has_n=1 ;;
    esac
done
[ $has_prompt -eq 1 ] || set -- -p "It was a bright cold day in April, and" "$@"
[ $has_n -eq 1 ] || set -- "$@" -n 64
exec "${BUILD_DIR:-build}/dsa" generate -m models/default "$@"
