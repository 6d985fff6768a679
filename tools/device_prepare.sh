#!/usr/bin/env bash
# Run here (not on the device): builds the CUDA targets and fills .devcarry/ with what tools/device_cuda.sh
# needs on the device machine: the stripped test and benchmark binaries and the non-system shared libraries
# they link (the device image has CUDA's own), and packs it into .devcarry.tar.xz (~3 MB; the working tree,
# bundled model included, and what is carried must stay under the device's 64 MiB). Then call the device with
# carry [".devcarry.tar.xz"]; tools/device_env.sh unpacks it there. BINARIES="dsa_gpu_tests cuda_bench" packs
# only those (when the tree and all three would pass the limit).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-cuda -G Ninja -DDSA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build build-cuda -j2 --target dsa_gpu_tests cuda_bench dsa
rm -rf .devcarry
mkdir -p .devcarry
for bin in ${BINARIES:-dsa_gpu_tests cuda_bench dsa}; do
    if [ "$bin" = dsa_gpu_tests ]; then cp build-cuda/tests/dsa_gpu_tests .devcarry/; else cp "build-cuda/$bin" .devcarry/; fi
done
strip .devcarry/*
for lib in $(ldd .devcarry/* | awk '/=> \//{print $3}' | sort -u); do
    case "$lib" in
        */libc.so*|*/libm.so*|*/libgcc_s*|*/libstdc++*|*/ld-linux*|*/libdl.so*|*/libpthread*|*/librt.so*|*/cuda/*) ;;
        *) cp -L "$lib" .devcarry/ ;;
    esac
done
XZ_OPT=-9e tar cJf .devcarry.tar.xz .devcarry
du -sh .devcarry .devcarry.tar.xz
