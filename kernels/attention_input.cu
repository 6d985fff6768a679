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

// Block t handles token t; warp w its items h = w, w + 8, ...: h < n_heads is a query head, otherwise KV
// head h - n_heads (k and v). Lane l owns the rotation pairs (i, i + D/2) for i = l, l + 32, ...: every load
// and store is coalesced. One block per token rather than one warp per item: 4096 tokens x 40 heads of
// Llama-3.1-8B were 40960 blocks of 4 warps, each warp waiting on its own position and block-table loads
// (126 us per 4096-token chunk for 150 MB, ~1.2 TB/s); the token's position is now read once per block.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) attention_input_kernel(AttentionInputParams p) {
    pdl_begin();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int t = blockIdx.x;
    const int heads = p.n_heads + p.n_kv_heads;
    const int D = p.head_dim, half = D / 2;
    const int row = (p.n_heads + 2 * p.n_kv_heads) * D;
    const int per_seq = p.n_tokens / p.n_seq, seq = t / per_seq;
    const int pos = p.start_pos[seq] + t % per_seq;
    const int32_t* block_table = p.block_tables + seq * p.table_stride;
    for (int h = warp; h < heads; h += kWarpsPerBlock) {
        const bool is_q = h < p.n_heads;
        const float* src = p.qkv + static_cast<size_t>(t) * row + static_cast<size_t>(h) * D;
        const float* bias = p.bias ? p.bias + static_cast<size_t>(h) * D : nullptr;
        float x0[kMaxPairsPerLane], x1[kMaxPairsPerLane];
        float ss = 0.0f;
#pragma unroll
        for (int u = 0; u < kMaxPairsPerLane; ++u) {
            const int i = lane + 32 * u;
            x0[u] = x1[u] = 0.0f;
            if (i < half) {
                x0[u] = src[i] + (bias ? bias[i] : 0.0f);
                x1[u] = src[i + half] + (bias ? bias[i + half] : 0.0f);
                ss += x0[u] * x0[u] + x1[u] * x1[u];
            }
        }
        const float* norm_w = is_q ? p.q_norm : p.k_norm;
        if (norm_w) {
            const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(D) + p.norm_eps);
#pragma unroll
            for (int u = 0; u < kMaxPairsPerLane; ++u) {
                const int i = lane + 32 * u;
                if (i < half) {
                    x0[u] *= inv * norm_w[i];
                    x1[u] *= inv * norm_w[i + half];
                }
            }
        }
#pragma unroll
        for (int u = 0; u < kMaxPairsPerLane; ++u) {
            const int i = lane + 32 * u;
            if (i < half) finish_attention_input_pair(p, t, h, i, x0[u], x1[u], pos, block_table);
        }
        if (is_q) continue;
        // V of the same KV head: bias only, no norm, no rotation.
        const int vh = h + p.n_kv_heads;
        const float* vsrc = src + static_cast<size_t>(p.n_kv_heads) * D;
        const float* vbias = bias ? bias + static_cast<size_t>(p.n_kv_heads) * D : nullptr;
        for (int i = lane; i < half; i += 32)
            finish_attention_input_pair(p, t, vh, i, vsrc[i] + (vbias ? vbias[i] : 0.0f),
                                        vsrc[i + half] + (vbias ? vbias[i + half] : 0.0f), pos, block_table);
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
    launch_kernel(attention_input_kernel, dim3(p.n_tokens), dim3(kWarpsPerBlock * 32), 0, stream, p);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
