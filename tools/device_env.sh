# Sourced by the tools/device_*.sh scripts on the device machine, from the repository root: $OUT (what comes
# back), the carried shared libraries on the loader path, the tests' data path, and $NCU (Nsight Compute).
# Carried packed (tools/device_prepare.sh); unpacked afresh: a warm machine keeps the last call's copy.
if [ -f .devcarry.tar.xz ]; then rm -rf .devcarry && tar xJf .devcarry.tar.xz; fi
OUT=${OUT:-/tmp/dsa_out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devcarry:${LD_LIBRARY_PATH:-}
# The test binary reads tests/data through the absolute path it was configured with.
src=$(grep -a -o -m1 '/[[:alnum:]_/.-]*/tests/data' .devcarry/dsa_gpu_tests 2>/dev/null | head -1 | sed 's|/tests/data$||')
if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"; fi
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)

# Every GPU test suite in its own process (a crash in one cannot hide the others' results): one summary line
# per suite on stdout, every log appended to $OUT/tests.log, then the failures' lines.
run_gpu_suites() {
    for suite in $(.devcarry/dsa_gpu_tests --gtest_list_tests | grep -E '^[A-Za-z0-9_/]+\.$' | tr -d '.'); do
        timeout 120 .devcarry/dsa_gpu_tests --gtest_filter="$suite.*" >/tmp/suite.log 2>&1
        echo "$suite: exit $? $(grep -E '^\[  (PASSED|FAILED)  \]' /tmp/suite.log | tr '\n' ' ')"
        cat /tmp/suite.log >>"$OUT/tests.log"
    done
    grep -E 'Failure|Expected|Which is|^\[  FAILED' "$OUT/tests.log" | head -30
}
