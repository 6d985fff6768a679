#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/gemv.h"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

constexpr int kWarps = 8;

// x is loaded once for a warp's rows. Lane l reads 16-byte vectors l, l + 32, ... of each row (each warp load
// is 512 contiguous bytes); kUnroll vectors per row are issued before the first FMA consumes them. Dot
// product of two 16-byte vectors in fp32. bf16 -> fp32 is a 16-bit shift of each half of a 32-bit word (no
// unpacking into separate registers: the bf16 kernels stay under the register cap without spills).
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

// Warp w of block b owns kRowsPerWarp rows: (b * kWarps + w) * kRowsPerWarp + [0, kRowsPerWarp), or with
// kSwiglu the pair (b * kWarps + w, n / 2 + b * kWarps + w).
template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks, bool kNormIn, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) gemv_kernel(const GemvArgs a) {
    static_assert(!kSwiglu || kRowsPerWarp == 2);
    using V = Vec16<T>;
    extern __shared__ __align__(16) unsigned char gemv_smem[];
    const int lane = threadIdx.x % 32, n = a.n, k = a.k;
    const int wi = blockIdx.x * kWarps + threadIdx.x / 32;
    const int half = n / 2;
    auto row_of = [&](int r) { return kSwiglu ? wi + r * half : wi * kRowsPerWarp + r; };
    const bool active = kSwiglu ? wi < half : row_of(0) < n;
    if (!kNormIn && !active) return;  // with kNormIn every warp takes part in the block's norm
    const int nvec = k / V::N;
    const V* wv[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
        wv[r] = reinterpret_cast<const V*>(static_cast<const T*>(a.w) +
                                           static_cast<size_t>(min(row_of(r), n - 1)) * k);
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

    const V* xv = reinterpret_cast<const V*>(a.x);
    if constexpr (kNormIn) {  // rmsnorm_kernel's arithmetic, in the same order (bit-identical)
        T* xs = reinterpret_cast<T*>(gemv_smem);  // [k]
        const float* in = a.norm_in;
        float ss = 0.0f;
#pragma unroll 8
        for (int i = threadIdx.x; i < k; i += blockDim.x) ss += in[i] * in[i];
        const float inv = rsqrtf(block_sum(ss) / static_cast<float>(k) + a.norm_eps);
#pragma unroll 8
        for (int i = threadIdx.x; i < k; i += blockDim.x) xs[i] = from_f32<T>(in[i] * inv * a.norm_weight[i]);
        __syncthreads();
        if (!active) return;
        xv = reinterpret_cast<const V*>(xs);
    }

    float acc[kRowsPerWarp] = {};
    for (int base = lane; base < nvec; base += 32 * kUnroll) {
        V x[kUnroll];
        if (base != lane) load_w(base);
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            if (base + 32 * u < nvec) x[u] = xv[base + 32 * u];
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            if (base + 32 * u < nvec) {
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) acc[r] += dot16(b[r][u], x[u]);
            }
        }
    }
    float s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = warp_sum(acc[r]);
    if (lane != 0) return;
    if constexpr (kSwiglu) {
        const float g = s[0], u = s[1];  // swiglu_kernel's arithmetic
        static_cast<T*>(a.swiglu_out)[wi] = from_f32<T>(g / (1.0f + expf(-g)) * u);
    } else {
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            const int row = row_of(r);
            if (row < n) a.y[row] = a.beta == 0.0f ? s[r] : a.beta * a.y[row] + s[r];
        }
    }
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks, bool kNormIn, bool kSwiglu>
void launch(const GemvArgs& a, cudaStream_t stream) {
    const int warps = kSwiglu ? a.n / 2 : (a.n + kRowsPerWarp - 1) / kRowsPerWarp;
    const size_t smem = kNormIn ? static_cast<size_t>(a.k) * sizeof(T) : 0;
    launch_kernel_as(true, gemv_kernel<T, kRowsPerWarp, kUnroll, kMinBlocks, kNormIn, kSwiglu>,
                     dim3((warps + kWarps - 1) / kWarps), dim3(kWarps * 32), smem, stream, a);
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks = 1>
void launch_fused(const GemvArgs& a, cudaStream_t stream) {
    const bool norm = a.norm_in != nullptr;
    if constexpr (kRowsPerWarp == 2) {
        if (a.swiglu_out) {
            if (norm)
                launch<T, 2, kUnroll, kMinBlocks, true, true>(a, stream);
            else
                launch<T, 2, kUnroll, kMinBlocks, false, true>(a, stream);
            return;
        }
    }
    if (norm)
        launch<T, kRowsPerWarp, kUnroll, kMinBlocks, true, false>(a, stream);
    else
        launch<T, kRowsPerWarp, kUnroll, kMinBlocks, false, false>(a, stream);
}

constexpr size_t kMaxNormBytes = 48 * 1024;  // x in shared memory without an opt-in attribute

}  // namespace

bool gemv_supported(int k, DType dtype, bool norm_in) {
    const size_t bytes = static_cast<size_t>(k) * dtype_size(dtype);
    return k > 0 && bytes % 16 == 0 && (!norm_in || bytes <= kMaxNormBytes);
}

void gemv(const GemvArgs& a, cudaStream_t stream, int variant) {
    if (a.n == 0) return;
    if (!gemv_supported(a.k, a.dtype, a.norm_in != nullptr))
        throw_error("CUDA gemv: row length " + std::to_string(a.k) +
                    " is not a whole number of 16-byte vectors (or, with the norm fused, over 48 KB)");
    if (a.swiglu_out && a.n % 2 != 0)
        throw_error("CUDA gemv: SwiGLU needs an even number of rows, got " + std::to_string(a.n));
    if (a.swiglu_out && variant == 2) variant = 0;  // one row per warp cannot pair gate and up
    DSA_DISPATCH_DTYPE(
        a.dtype, switch (variant) {
            case 1:
                launch_fused<T, 2, 4, 1>(a, stream);
                break;
            case 2:
                launch_fused<T, 1, 4, 4>(a, stream);
                break;
            case 3:
                launch_fused<T, 2, 2, 4>(a, stream);
                break;
            default:
                launch_fused<T, 2, 4, 3>(a, stream);
                break;
        });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
