#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/attention_input.cuh"
#include "kernels/attention_input.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

constexpr int kMaxPairsPerLane = 4;  // head_dim <= 256: 128 rotation pairs over 32 lanes
constexpr int kWarpsPerBlock = 8;
constexpr int kItemsPerRound = 6;  // a warp's items whose loads are in flight together

// Block t handles token t. Its items are the token's heads of the fused row, h < n_heads query heads, then
// the n_kv_heads key heads, then the value heads; warp w takes h = w, w + 8, ... (Llama-3.1-8B: 48 items,
// 6 per warp). Lane l owns the rotation pairs (i, i + D/2) for i = l, l + 32, ...: every load and store is
// coalesced, and the lane's pairs have the same angle in every q and k head of the token, so their cos and
// sin are computed once per lane rather than once per head.
//
// Why rounds of 6 items: a warp handling its items one after another waited on each item's loads in turn
// (~1 us from DRAM), 6 round trips per block: 103-112 us per 4096-token chunk for 150 MB (a 36 us floor
// at 4.2 TB/s, ncu, docs/perf.md). Now all 6 items' loads are issued before any of their math: ~93 us per
// 4096 tokens (ncu). The arrays hold kPairs = ceil(D / 64) pairs per lane (2 at D = 128): sized for 4,
// the kernel took 128 registers and ran 2 blocks per SM.
template <int kPairs>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) attention_input_kernel(AttentionInputParams p) {
    pdl_begin();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int t = blockIdx.x;
    const int n_items = p.n_heads + 2 * p.n_kv_heads, rotated = p.n_heads + p.n_kv_heads;
    const int D = p.head_dim, half = D / 2;
    const size_t row = static_cast<size_t>(n_items) * D;
    const int per_seq = p.n_tokens / p.n_seq, seq = t / per_seq;
    const int32_t* block_table = p.block_tables + seq * p.table_stride;
    const float* token_row = p.qkv + t * row;

    for (int h0 = warp; h0 < n_items; h0 += kWarpsPerBlock * kItemsPerRound) {
        float x0[kItemsPerRound][kPairs], x1[kItemsPerRound][kPairs];
#pragma unroll
        for (int b = 0; b < kItemsPerRound; ++b) {
            const int h = h0 + b * kWarpsPerBlock;
            const float* src = token_row + static_cast<size_t>(h) * D;
            const float* bias = p.bias ? p.bias + static_cast<size_t>(h) * D : nullptr;
#pragma unroll
            for (int u = 0; u < kPairs; ++u) {
                const int i = lane + 32 * u;
                x0[b][u] = x1[b][u] = 0.0f;
                if (h < n_items && i < half) {
                    x0[b][u] = src[i] + (bias ? bias[i] : 0.0f);
                    x1[b][u] = src[i + half] + (bias ? bias[i + half] : 0.0f);
                }
            }
        }
        // After the round's loads, so their issue does not wait on the position and the angles (the same
        // every round; Llama-3.1-8B has one).
        const int pos = p.start_pos[seq] + t % per_seq;
        float rc[kPairs], rs[kPairs];
#pragma unroll
        for (int u = 0; u < kPairs; ++u) {
            const int i = lane + 32 * u;
            rc[u] = 1.0f;
            rs[u] = 0.0f;
            if (i < half) rope_cos_sin(pos, p.inv_freq[i], p.rope_scaling, rc[u], rs[u]);
        }
#pragma unroll
        for (int b = 0; b < kItemsPerRound; ++b) {
            const int h = h0 + b * kWarpsPerBlock;
            if (h >= n_items) break;
            const float* norm_w = h < p.n_heads ? p.q_norm : h < rotated ? p.k_norm : nullptr;
            if (norm_w) {
                float ss = 0.0f;
#pragma unroll
                for (int u = 0; u < kPairs; ++u) ss += x0[b][u] * x0[b][u] + x1[b][u] * x1[b][u];
                const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(D) + p.norm_eps);
#pragma unroll
                for (int u = 0; u < kPairs; ++u) {
                    const int i = lane + 32 * u;
                    if (i < half) {
                        x0[b][u] *= inv * norm_w[i];
                        x1[b][u] *= inv * norm_w[i + half];
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < kPairs; ++u) {
                const int i = lane + 32 * u;
                if (i < half)
                    finish_attention_input_pair(p, t, h, i, x0[b][u], x1[b][u], pos, block_table, rc[u],
                                                rs[u]);
            }
        }
    }
}

}  // namespace

void attention_input(const AttentionInputParams& p, cudaStream_t stream) {
    if (p.head_dim % 2 != 0 || p.head_dim > 2 * 32 * kMaxPairsPerLane)
        throw_error("CUDA attention input: head_dim " + std::to_string(p.head_dim) +
                    " is not supported (even, at most 256)");
    if (p.n_seq < 1 || p.n_tokens % p.n_seq != 0)
        throw_error("CUDA attention input: " + std::to_string(p.n_tokens) + " tokens do not split into " +
                    std::to_string(p.n_seq) + " sequences");
    if (p.kminmax != nullptr && p.n_tokens != p.n_seq)
        throw_error(
            "CUDA attention input: page metadata is updated here for one token per sequence only, got " +
            std::to_string(p.n_tokens) + " tokens of " + std::to_string(p.n_seq) + " sequences");
    if (p.n_tokens == 0) return;
    const dim3 grid(p.n_tokens), block(kWarpsPerBlock * 32);
    switch ((p.head_dim / 2 + 31) / 32) {
        case 1:
            launch_kernel(attention_input_kernel<1>, grid, block, 0, stream, p);
            break;
        case 2:
            launch_kernel(attention_input_kernel<2>, grid, block, 0, stream, p);
            break;
        case 3:
            launch_kernel(attention_input_kernel<3>, grid, block, 0, stream, p);
            break;
        default:
            launch_kernel(attention_input_kernel<kMaxPairsPerLane>, grid, block, 0, stream, p);
            break;
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
