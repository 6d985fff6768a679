#pragma once
// Device helpers shared by the kernels: element conversions for the three storage dtypes, warp
// reductions, and the host-side dispatch from dsa::DType to a device element type.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "util/dtype.h"

namespace dsa::cuda {

using bf16 = __nv_bfloat16;

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
    return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f32<bf16>(bf16 v) {
    return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
    return __float2half_rn(v);
}
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float v) {
    return __float2bfloat16_rn(v);
}

// 16 bytes of T, for 16-byte loads and stores: 8 elements of a 16-bit type, 4 of fp32.
template <typename T>
struct alignas(16) Vec16 {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
};

// f as an unsigned integer in the floats' order (a larger float, a larger integer; -0 and +0 tie, as in a
// float comparison; NaN is the caller's to handle): the sort keys of the top-k selection and the argmax.
__device__ __forceinline__ uint32_t ordered_bits(float f) {
    if (f == 0.0f) f = 0.0f;
    const uint32_t b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// 2^x with the SFU instruction (2 ulp; 2^-inf = 0): the softmax exponentials of the attention kernels.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();  // `partial` may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float t = lane < n_warps ? partial[lane] : 0.0f;
    return warp_sum(t);
}

// 1 / sqrt(mean(row^2) + eps) over a block of blockDim.x threads, every thread gets it: RMSNorm's factor,
// shared by rmsnorm_kernel and the GEMV's fused norm so both sum in one order and stay bit-identical.
// With cols % 4 == 0 (row 16-byte aligned) thread i sums float4 vectors i, i + blockDim.x, ...: a third of
// the load instructions of a scalar loop.
__device__ __forceinline__ float rms_inverse(const float* __restrict__ row, int cols, float eps) {
    float ss = 0.0f;
    if (cols % 4 == 0) {
        const float4* v = reinterpret_cast<const float4*>(row);
#pragma unroll 4
        for (int i = threadIdx.x; i < cols / 4; i += blockDim.x) {
            const float4 x = v[i];
            ss += x.x * x.x;
            ss += x.y * x.y;
            ss += x.z * x.z;
            ss += x.w * x.w;
        }
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) ss += row[i] * row[i];
    }
    return rsqrtf(block_sum(ss) / static_cast<float>(cols) + eps);
}

}  // namespace dsa::cuda

// Calls the body (the variadic arguments, so it may contain commas) with `using T = <device type of DTYPE>;`
// in scope.
#define DSA_DISPATCH_DTYPE(DTYPE, ...)   \
    switch (DTYPE) {                     \
        case ::dsa::DType::F32: {        \
            using T = float;             \
            __VA_ARGS__;                 \
            break;                       \
        }                                \
        case ::dsa::DType::F16: {        \
            using T = __half;            \
            __VA_ARGS__;                 \
            break;                       \
        }                                \
        case ::dsa::DType::BF16: {       \
            using T = ::dsa::cuda::bf16; \
            __VA_ARGS__;                 \
            break;                       \
        }                                \
    }
