#!/usr/bin/env bash
# The main job in one command: set up, build, and generate text from the bundled default model.
# Extra arguments go to `dsa generate` (e.g. tools/run.sh -p "Once upon a time" -n 64).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh dsa
if [ $# -eq 0 ]; then
    set -- -p "It was a bright cold day in April, and" -n 64
fi
exec "${BUILD_DIR:-build}/dsa" generate -m models/default "$@"
