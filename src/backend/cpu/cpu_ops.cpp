#include "backend/cpu/cpu_ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/simd.h"
#include "util/thread_pool.h"

namespace dsa {

namespace {

using simd::f32x8;

// Rows of w converted per tile: 16 rows of K = 4096 fp32 are 256 KiB, which stay in L2 while every
// activation row of the chunk streams past them.
constexpr int kTileRows = 16;

[[gnu::always_inline]] inline void f16_row(const uint16_t* h, size_t n, float* out) {
    for (size_t i = 0; i < n; ++i) {
        const uint32_t em = h[i] & 0x7fffu;
        const uint32_t exp = em >> 10;
        const uint32_t normal = (em << 13) + ((127u - 15u) << 23);
        const uint32_t inf_nan = (em << 13) | 0x7f800000u;
        const uint32_t sub = std::bit_cast<uint32_t>(static_cast<float>(em & 0x3ffu) * 0x1p-24f);
        // Selects by masks rather than branches so that the loop vectorises.
        const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
        const uint32_t is_inf_nan = 0u - static_cast<uint32_t>(exp == 31);
        const uint32_t bits = (sub & is_sub) | (inf_nan & is_inf_nan) | (normal & ~(is_sub | is_inf_nan));
        out[i] = std::bit_cast<float>(bits | (static_cast<uint32_t>(h[i] & 0x8000u) << 16));
    }
}

[[gnu::always_inline]] inline void bf16_row(const uint16_t* h, size_t n, float* out) {
    for (size_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(static_cast<uint32_t>(h[i]) << 16);
}

[[gnu::always_inline]] inline void to_f32(const void* base, DType t, size_t first, size_t n, float* out) {
    switch (t) {
        case DType::F32:
            std::memcpy(out, static_cast<const float*>(base) + first, n * sizeof(float));
            return;
        case DType::F16:
            f16_row(static_cast<const uint16_t*>(base) + first, n, out);
            return;
        case DType::BF16:
            bf16_row(static_cast<const uint16_t*>(base) + first, n, out);
            return;
    }
}

// res[t][r] = w[r] · x[t] for TT activation rows and R weight rows, sharing every load: TT*R vector
// accumulators (8 with 2x4), which fit the 16 vector registers of SSE2/AVX2.
template <int TT, int R>
[[gnu::always_inline]] inline void micro_kernel(const float* const* w, const float* const* x, int K,
                                                float* res, int res_stride) {
    f32x8 acc[TT][R] = {};
    const int K8 = K & ~7;
    // Fully unrolled, so that wv and acc live in registers (a rolled load loop goes through the stack
    // with 16-byte stores and 32-byte loads, which stall store forwarding: 4x slower).
    for (int i = 0; i < K8; i += 8) {
        f32x8 wv[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) simd::load8(wv[r], w[r] + i);
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            f32x8 xv;
            simd::load8(xv, x[t] + i);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) acc[t][r] += wv[r] * xv;
        }
    }
    // Reduce with constant indices first: a variable index into acc (as the tail loop below would
    // need) forces the whole accumulator array onto the stack, also in the main loop (5x slower).
    float sums[TT][R];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) sums[t][r] = simd::hsum8(acc[t][r]);
    for (int t = 0; t < TT; ++t) {
        for (int r = 0; r < R; ++r) {
            float tail = 0.0f;
            for (int k = K8; k < K; ++k) tail += w[r][k] * x[t][k];
            res[t * res_stride + r] = sums[t][r] + tail;
        }
    }
}

template <int TT>
[[gnu::always_inline]] inline void rows_times_x(const float* const* rows, int n_rows, const float* const* x,
                                                int K, float* out, int N) {
    int r = 0;
    for (; r + 4 <= n_rows; r += 4) micro_kernel<TT, 4>(rows + r, x, K, out + r, N);
    for (; r < n_rows; ++r) micro_kernel<TT, 1>(rows + r, x, K, out + r, N);
}

// One tile: converts rows [r0, r0 + n_rows) of w to fp32 (unless stored as fp32) and writes
// out[t][r0 .. r0 + n_rows) for every t. Built for AVX2 and the baseline, picked at load time.
__attribute__((target_clones("avx2", "default"))) void tile_times_x(const TensorView& w, int r0, int n_rows,
                                                                    const float* x, int T, float* tile,
                                                                    const float* bias, float* out) {
    const int N = static_cast<int>(w.rows());
    const int K = static_cast<int>(w.cols());
    const float* rows[kTileRows];
    for (int r = 0; r < n_rows; ++r) {
        const size_t first = static_cast<size_t>(r0 + r) * K;
        if (w.dtype == DType::F32) {
            rows[r] = static_cast<const float*>(w.data) + first;
        } else {
            float* dst = tile + static_cast<size_t>(r) * K;
            to_f32(w.data, w.dtype, first, K, dst);
            rows[r] = dst;
        }
    }
    int t = 0;
    for (; t + 2 <= T; t += 2) {
        const float* xt[2] = {x + static_cast<size_t>(t) * K, x + static_cast<size_t>(t + 1) * K};
        rows_times_x<2>(rows, n_rows, xt, K, out + static_cast<size_t>(t) * N + r0, N);
    }
    for (; t < T; ++t) {
        const float* xt[1] = {x + static_cast<size_t>(t) * K};
        rows_times_x<1>(rows, n_rows, xt, K, out + static_cast<size_t>(t) * N + r0, N);
    }
    if (bias) {
        for (int tt = 0; tt < T; ++tt)
            for (int r = 0; r < n_rows; ++r) out[static_cast<size_t>(tt) * N + r0 + r] += bias[r0 + r];
    }
}

}  // namespace

void weights_to_f32(const void* base, DType t, size_t first, size_t n, float* out) {
    to_f32(base, t, first, n, out);
}

void matmul(ThreadPool& pool, const float* x, int T, const TensorView& w, const float* bias, float* out) {
    const int N = static_cast<int>(w.rows());
    const int K = static_cast<int>(w.cols());
    const size_t n_tiles = (N + kTileRows - 1) / kTileRows;
    // At least ~256K multiply-adds per chunk, so tiny layers do not pay for waking the pool.
    const size_t work_per_tile = static_cast<size_t>(kTileRows) * K * T;
    const size_t grain = std::max<size_t>(1, (size_t{1} << 18) / work_per_tile);
    pool.parallel_for(n_tiles, grain, [&](size_t b0, size_t b1) {
        thread_local std::vector<float> tile;  // [kTileRows][K], reused across calls
        if (w.dtype != DType::F32 && tile.size() < static_cast<size_t>(kTileRows) * K)
            tile.resize(static_cast<size_t>(kTileRows) * K);
        for (size_t b = b0; b < b1; ++b) {
            const int r0 = static_cast<int>(b) * kTileRows;
            tile_times_x(w, r0, std::min(kTileRows, N - r0), x, T, tile.data(), bias, out);
        }
    });
}

void rmsnorm(const float* x, int T, int n, const float* weight, float eps, float* out) {
    for (int t = 0; t < T; ++t) {
        const float* xt = x + static_cast<size_t>(t) * n;  // [n]
        float* ot = out + static_cast<size_t>(t) * n;      // [n]
        double ss = 0.0;
        for (int i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
        for (int i = 0; i < n; ++i) ot[i] = weight[i] * (xt[i] * inv);
    }
}

void apply_rope(float* x, int T, int n_heads, int D, const float* cos, const float* sin) {
    const int half = D / 2;
    for (int t = 0; t < T; ++t) {
        const float* c = cos + static_cast<size_t>(t) * half;  // [D/2]
        const float* s = sin + static_cast<size_t>(t) * half;  // [D/2]
        for (int h = 0; h < n_heads; ++h) {
            float* xh = x + (static_cast<size_t>(t) * n_heads + h) * D;  // [D]
            for (int i = 0; i < half; ++i) {
                const float a = xh[i];
                const float b = xh[i + half];
                xh[i] = a * c[i] - b * s[i];
                xh[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

void silu_mul(float* gate, const float* up, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

}  // namespace dsa
