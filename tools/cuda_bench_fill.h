#pragma once
// Random bf16 fills for tools/cuda_bench, on the device: every element its own N(0, 1) draw from a
// counter-based hash of (seed, index), so a buffer of any size holds no repeated block. (A host-drawn 64 MiB
// chunk replicated over a 2 GB K pool repeated every page 4 times at 128K context: Quest bounds tied exactly
// in classes of 4, and the benchmark measured the selection's tie path instead of real data's.)
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace dsa::bench {

// dst: [n] bf16 on the device. Checks the launch; returns before the fill completes (stream order).
void fill_normal_bf16(void* dst, size_t n, uint64_t seed, cudaStream_t stream = nullptr);

}  // namespace dsa::bench
