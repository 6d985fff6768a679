#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "tools/cuda_bench_fill.h"

namespace dsa::bench {

namespace {

// splitmix64's finaliser: a bijection of 64-bit words, so distinct (seed, index) pairs hash apart.
__device__ __forceinline__ uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Box-Muller on two 24-bit uniforms in (0, 1) from one hash.
__device__ __forceinline__ float normal_at(uint64_t seed, uint64_t i) {
    const uint64_t h = mix64((seed << 40) ^ i);
    const float u1 = (static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
    const float u2 = (static_cast<float>((h >> 8) & 0xFFFFFFu) + 0.5f) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

__global__ void fill_normal_kernel(cuda::bf16* dst, size_t n, uint64_t seed) {
    const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        dst[i] = __float2bfloat16_rn(normal_at(seed, i));
}

}  // namespace

void fill_normal_bf16(void* dst, size_t n, uint64_t seed, cudaStream_t stream) {
    if (n == 0) return;
    const size_t blocks = std::min<size_t>((n + 255) / 256, 132 * 16);
    fill_normal_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(static_cast<cuda::bf16*>(dst), n,
                                                                          seed);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::bench
