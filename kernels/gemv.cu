#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/gemv.h"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

constexpr int kWarps = 8;

// Warp w of block b owns rows (b * kWarps + w) * kRowsPerWarp + [0, kRowsPerWarp) (x is loaded once for
// them all). Lane l reads 16-byte vectors l, l + 32, ... of each row (each warp load is 512 contiguous
// bytes); kUnroll vectors per row are issued before the first FMA consumes them.
// Dot product of two 16-byte vectors in fp32. bf16 -> fp32 is a 16-bit shift of each half of a 32-bit word
// (no unpacking into separate registers: the bf16 kernels stay under the register cap without spills).
__device__ __forceinline__ float dot16(const Vec16<bf16>& a, const Vec16<bf16>& b) {
    const uint32_t* x = reinterpret_cast<const uint32_t*>(&a);
    const uint32_t* y = reinterpret_cast<const uint32_t*>(&b);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        s = fmaf(__uint_as_float(x[i] << 16), __uint_as_float(y[i] << 16), s);
        s = fmaf(__uint_as_float(x[i] & 0xffff0000u), __uint_as_float(y[i] & 0xffff0000u), s);
    }
    return s;
}
__device__ __forceinline__ float dot16(const Vec16<__half>& a, const Vec16<__half>& b) {
    const __half2* x = reinterpret_cast<const __half2*>(&a);
    const __half2* y = reinterpret_cast<const __half2*>(&b);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 fx = __half22float2(x[i]), fy = __half22float2(y[i]);
        s = fmaf(fx.x, fy.x, s);
        s = fmaf(fx.y, fy.y, s);
    }
    return s;
}
__device__ __forceinline__ float dot16(const Vec16<float>& a, const Vec16<float>& b) {
    return a.v[0] * b.v[0] + a.v[1] * b.v[1] + a.v[2] * b.v[2] + a.v[3] * b.v[3];
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks)
    gemv_kernel(const T* __restrict__ w, const T* __restrict__ x, float* __restrict__ y, int n, int k,
                float beta) {
    using V = Vec16<T>;
    const int lane = threadIdx.x % 32;
    const int row0 = (blockIdx.x * kWarps + threadIdx.x / 32) * kRowsPerWarp;
    if (row0 >= n) return;
    const int nvec = k / V::N;
    const V* xv = reinterpret_cast<const V*>(x);
    const V* wv[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
        wv[r] = reinterpret_cast<const V*>(w + static_cast<size_t>(min(row0 + r, n - 1)) * k);
    V b[kRowsPerWarp][kUnroll];
    auto load_w = [&](int base) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int i = base + 32 * u;
            if (i < nvec) {
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) {
                    const int4 raw = __ldg(reinterpret_cast<const int4*>(wv[r] + i));
                    b[r][u] = *reinterpret_cast<const V*>(&raw);
                }
            }
        }
    };
    // The first weights are requested before waiting for the kernel that writes x (and y): under
    // ProgrammaticLaunch::Gemv this block may run while that kernel finishes.
    load_w(lane);
    pdl_begin();

    float acc[kRowsPerWarp] = {};
    for (int base = lane; base < nvec; base += 32 * kUnroll) {
        V a[kUnroll];
        if (base != lane) load_w(base);
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            if (base + 32 * u < nvec) a[u] = xv[base + 32 * u];
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            if (base + 32 * u < nvec) {
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) acc[r] += dot16(b[r][u], a[u]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        const float s = warp_sum(acc[r]);
        if (lane == 0 && row0 + r < n) y[row0 + r] = beta == 0.0f ? s : beta * y[row0 + r] + s;
    }
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks = 1>
void launch(const void* w, const void* x, float* y, int n, int k, float beta, cudaStream_t stream) {
    const int rows_per_block = kWarps * kRowsPerWarp;
    launch_kernel_as(true, gemv_kernel<T, kRowsPerWarp, kUnroll, kMinBlocks>,
                     dim3((n + rows_per_block - 1) / rows_per_block), dim3(kWarps * 32), 0, stream,
                     static_cast<const T*>(w), static_cast<const T*>(x), y, n, k, beta);
}

}  // namespace

bool gemv_supported(int k, DType dtype) {
    return k > 0 && (k * dtype_size(dtype)) % 16 == 0;
}

void gemv(const void* w, const void* x, DType dtype, float* y, int n, int k, float beta, cudaStream_t stream,
          int variant) {
    if (n == 0) return;
    if (!gemv_supported(k, dtype))
        throw_error("CUDA gemv: row length " + std::to_string(k) +
                    " is not a whole number of 16-byte vectors");
    DSA_DISPATCH_DTYPE(
        dtype, switch (variant) {
            case 1:
                launch<T, 2, 4, 1>(w, x, y, n, k, beta, stream);
                break;
            case 2:
                launch<T, 1, 4, 4>(w, x, y, n, k, beta, stream);
                break;
            case 3:
                launch<T, 2, 2, 4>(w, x, y, n, k, beta, stream);
                break;
            default:
                launch<T, 2, 4, 3>(w, x, y, n, k, beta, stream);
                break;
        });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
