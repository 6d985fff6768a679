#!/usr/bin/env bash
# The whole test suite in one command: set up, build, run every test (GPU tests skip without a device).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
