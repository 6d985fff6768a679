#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/attention_input.cuh"
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

// What a warp does with its rows' sums: store them into y (beta), that and the argmax over y, or with a row
// pair, the SwiGLU of (gate, up) = rows (i, n/2 + i), or attention_input's end of the rotation pair
// (h D + j, h D + j + D/2).
enum class Epilogue { Store, Argmax, Swiglu, AttentionInput };

// (value, index) as one integer whose unsigned order is "larger value, then lower index"; 0 is below every
// real candidate. -0 counts as +0 (equal values tie) and NaN is never a candidate, as in argmax.cu.
__device__ __forceinline__ unsigned long long argmax_key(float v, int index) {
    if (isnan(v)) return 0;
    return (static_cast<unsigned long long>(ordered_bits(v)) << 32) |
           (0xffffffffu - static_cast<uint32_t>(index));
}
constexpr int kMaxBlocksPerSm = 8;  // 2048 threads per multiprocessor / 256: the persistent grid's bound

// The block's winner into argmax_scratch's slot of this block; the last block to arrive merges every block's
// winner (in a fixed order: the result does not depend on arrival) and resets the ticket.
// argmax_scratch: the ticket (8 bytes), then one key per block (at most kMaxBlocksPerSm * SMs).
__device__ __forceinline__ void merge_argmax(const GemvArgs& a, unsigned long long best) {
    __shared__ unsigned long long warp_best[kWarps];
    __shared__ bool last;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    auto* ticket = static_cast<unsigned int*>(a.argmax_scratch);
    auto* keys = static_cast<unsigned long long*>(a.argmax_scratch) + 1;
    if (lane == 0) warp_best[warp] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kWarps; ++w) best = max(best, warp_best[w]);
        keys[blockIdx.x] = max(best, warp_best[0]);
        __threadfence();  // the key is visible device-wide before the block is counted
        last = atomicAdd(ticket, 1u) == gridDim.x - 1;
        if (last) *ticket = 0;  // every block has arrived: ready for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    best = 0;
    for (int b = threadIdx.x; b < gridDim.x; b += blockDim.x) best = max(best, __ldcg(keys + b));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) best = max(best, __shfl_xor_sync(0xffffffffu, best, o));
    __syncthreads();
    if (lane == 0) warp_best[warp] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 0; w < kWarps; ++w) best = max(best, warp_best[w]);
        a.argmax_out[0] = best == 0 ? 0 : static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(best));
    }
}

// Warp item wi (warp w of block b, then every gridDim.x * kWarps items after it) owns kRowsPerWarp rows:
// wi * kRowsPerWarp + [0, kRowsPerWarp), or the pair of its epilogue.
template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks, bool kNormIn, Epilogue kEpi>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) gemv_kernel(const GemvArgs a) {
    static_assert(kEpi == Epilogue::Store || kEpi == Epilogue::Argmax || kRowsPerWarp == 2);
    constexpr bool kStore = kEpi == Epilogue::Store || kEpi == Epilogue::Argmax;
    using V = Vec16<T>;
    extern __shared__ __align__(16) unsigned char gemv_smem[];
    const int lane = threadIdx.x % 32, n = a.n, k = a.k;
    const int half = n / 2, head_half = a.attention.head_dim / 2;
    const int items = kStore ? (n + kRowsPerWarp - 1) / kRowsPerWarp : half;
    const int stride = gridDim.x * kWarps;
    int wi = blockIdx.x * kWarps + threadIdx.x / 32;
    auto row_of = [&](int item, int r) {
        if constexpr (kEpi == Epilogue::Swiglu) return item + r * half;
        if constexpr (kEpi == Epilogue::AttentionInput)
            return (item / head_half) * 2 * head_half + item % head_half + r * head_half;
        return item * kRowsPerWarp + r;
    };
    // With kNormIn every warp takes part in the block's norm, with Argmax in the block's winner.
    if (!kNormIn && kEpi != Epilogue::Argmax && wi >= items) return;
    const int nvec = k / V::N;
    const V* wv[kRowsPerWarp];
    auto set_rows = [&] {
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
            wv[r] = reinterpret_cast<const V*>(static_cast<const T*>(a.w) +
                                               static_cast<size_t>(min(row_of(wi, r), n - 1)) * k);
    };
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
    set_rows();
    load_w(lane);
    pdl_begin();

    const V* xv = reinterpret_cast<const V*>(a.x);
    if constexpr (kNormIn) {  // rmsnorm_kernel's arithmetic, in the same order (bit-identical)
        T* xs = reinterpret_cast<T*>(gemv_smem);  // [k]
        const float* in = a.norm_in;
        const float inv = rms_inverse(in, k, a.norm_eps);
#pragma unroll 8
        for (int i = threadIdx.x; i < k; i += blockDim.x) xs[i] = from_f32<T>(in[i] * inv * a.norm_weight[i]);
        __syncthreads();
        xv = reinterpret_cast<const V*>(xs);
    }

    unsigned long long best = 0;  // Argmax: this warp's winner so far
    for (bool first = true; wi < items; wi += stride, first = false) {
        if (!first) {
            set_rows();
            load_w(lane);
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
        if constexpr (kEpi == Epilogue::Argmax) {
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {  // beta is 0 here: y[row] = s[r]
                const int row = row_of(wi, r);
                if (row < n) best = max(best, argmax_key(s[r], row));
            }
        }
        if (lane != 0) continue;
        if constexpr (kEpi == Epilogue::Swiglu) {
            const float g = s[0], u = s[1];  // swiglu_kernel's arithmetic
            static_cast<T*>(a.swiglu_out)[wi] = from_f32<T>(g / (1.0f + expf(-g)) * u);
        } else if constexpr (kEpi == Epilogue::AttentionInput) {
            const AttentionInputParams& p = a.attention;  // attention_input_kernel's arithmetic
            const int r0 = row_of(wi, 0), r1 = row_of(wi, 1);
            finish_attention_input_pair(p, 0, wi / head_half, wi % head_half,
                                        s[0] + (p.bias ? p.bias[r0] : 0.0f),
                                        s[1] + (p.bias ? p.bias[r1] : 0.0f), p.start_pos[0], p.block_tables);
        } else {
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                const int row = row_of(wi, r);
                if (row < n) a.y[row] = a.beta == 0.0f ? s[r] : a.beta * a.y[row] + s[r];
            }
        }
    }
    if constexpr (kEpi == Epilogue::Argmax) merge_argmax(a, best);
}

int multiprocessors() {
    static const int n = [] {
        int device = 0, count = 0;
        CUDA_CHECK(cudaGetDevice(&device));
        CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
        return count;
    }();
    return n;
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks, bool kNormIn, Epilogue kEpi>
void launch(const GemvArgs& a, bool persistent, cudaStream_t stream) {
    const auto kernel = gemv_kernel<T, kRowsPerWarp, kUnroll, kMinBlocks, kNormIn, kEpi>;
    constexpr bool kStore = kEpi == Epilogue::Store || kEpi == Epilogue::Argmax;
    const int warps = kStore ? (a.n + kRowsPerWarp - 1) / kRowsPerWarp : a.n / 2;
    const size_t smem = kNormIn ? static_cast<size_t>(a.k) * sizeof(T) : 0;
    int blocks = (warps + kWarps - 1) / kWarps;
    if (persistent || kNormIn || kEpi == Epilogue::Argmax) {  // one wave: the blocks resident at once
        int per_sm = 0;
        CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWarps * 32, smem));
        blocks = std::min(blocks, std::clamp(per_sm, 1, kMaxBlocksPerSm) * multiprocessors());
    }
    launch_kernel_as(true, kernel, dim3(blocks), dim3(kWarps * 32), smem, stream, a);
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks, Epilogue kEpi>
void launch_norm(const GemvArgs& a, bool persistent, cudaStream_t stream) {
    if (a.norm_in)
        launch<T, kRowsPerWarp, kUnroll, kMinBlocks, true, kEpi>(a, persistent, stream);
    else
        launch<T, kRowsPerWarp, kUnroll, kMinBlocks, false, kEpi>(a, persistent, stream);
}

template <typename T, int kRowsPerWarp, int kUnroll, int kMinBlocks = 1>
void launch_fused(const GemvArgs& a, bool persistent, cudaStream_t stream) {
    if constexpr (kRowsPerWarp == 2) {
        if (a.swiglu_out)
            return launch_norm<T, 2, kUnroll, kMinBlocks, Epilogue::Swiglu>(a, persistent, stream);
        if (a.to_attention_input)
            return launch_norm<T, 2, kUnroll, kMinBlocks, Epilogue::AttentionInput>(a, persistent, stream);
    }
    if (a.argmax_out)
        return launch_norm<T, kRowsPerWarp, kUnroll, kMinBlocks, Epilogue::Argmax>(a, persistent, stream);
    launch_norm<T, kRowsPerWarp, kUnroll, kMinBlocks, Epilogue::Store>(a, persistent, stream);
}

constexpr size_t kMaxNormBytes = 48 * 1024;  // x in shared memory without an opt-in attribute

}  // namespace

size_t gemv_argmax_scratch_bytes() {
    return static_cast<size_t>(kMaxBlocksPerSm) * multiprocessors() * 8 + 8;
}

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
    if (a.to_attention_input) {
        const AttentionInputParams& p = a.attention;
        if (p.n_tokens != 1 || p.n_seq != 1 || p.q_norm || p.k_norm || p.head_dim % 2 != 0 ||
            a.n != (p.n_heads + 2 * p.n_kv_heads) * p.head_dim || a.swiglu_out)
            throw_error("CUDA gemv: the attention-input epilogue needs one token, no q/k norm and n = " +
                        std::to_string((p.n_heads + 2 * p.n_kv_heads) * p.head_dim) + " rows, got " +
                        std::to_string(a.n));
    }
    if (a.argmax_out && (a.argmax_scratch == nullptr || a.swiglu_out || a.to_attention_input ||
                         a.y == nullptr || a.beta != 0.0f))
        throw_error("CUDA gemv: the argmax epilogue needs y with beta 0, its scratch, and no other epilogue");
    const bool persistent = variant >= 4;
    variant %= 4;
    if ((a.swiglu_out || a.to_attention_input) && variant == 2) variant = 0;  // one row per warp: no pair
    DSA_DISPATCH_DTYPE(
        a.dtype, switch (variant) {
            case 1:
                launch_fused<T, 2, 4, 1>(a, persistent, stream);
                break;
            case 2:
                launch_fused<T, 1, 4, 4>(a, persistent, stream);
                break;
            case 3:
                launch_fused<T, 2, 2, 4>(a, persistent, stream);
                break;
            default:
                launch_fused<T, 2, 4, 3>(a, persistent, stream);
                break;
        });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
