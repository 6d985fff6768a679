#pragma once
// The per-element end of attention_input (attention_input.h), shared by its kernel and by the q/k/v GEMV's
// fused epilogue (gemv.h), so both write bit-identical q, K/V and page metadata.
#include "kernels/attention_input.h"
#include "kernels/common.cuh"
#include "kernels/rope.cuh"

namespace dsa::cuda {

// One rotation pair (j, j + D/2) of head `h` of token t's fused q/k/v row, after bias and q/k norm:
// h < n_heads is query head h, then the n_kv_heads key heads, then the value heads. q and k are rotated by
// (c, s), rope_cos_sin's values for (pos, j); q goes to q_out, k and v to the token's slot of the paged
// cache; for a key, with p.kminmax set (one token per sequence), the slot's page metadata too. pos: the
// token's position; block_table: its sequence's row.
__device__ __forceinline__ void finish_attention_input_pair(const AttentionInputParams& p, int t, int h,
                                                            int j, float x0, float x1, int pos,
                                                            const int32_t* block_table, float c, float s) {
    const int D = p.head_dim, half = D / 2;
    if (h < p.n_heads + p.n_kv_heads) rope_apply(x0, x1, c, s);
    if (h < p.n_heads) {
        bf16* q = reinterpret_cast<bf16*>(p.q_out) + (static_cast<size_t>(t) * p.n_heads + h) * D;
        q[j] = __float2bfloat16_rn(x0);
        q[j + half] = __float2bfloat16_rn(x1);
        return;
    }
    const bool is_k = h < p.n_heads + p.n_kv_heads;
    const int kvh = h - p.n_heads - (is_k ? 0 : p.n_kv_heads);
    const int page = block_table[pos / p.page_size], slot = pos % p.page_size;
    const size_t off = ((static_cast<size_t>(page) * p.n_kv_heads + kvh) * p.page_size + slot) * D;
    bf16* dst = reinterpret_cast<bf16*>(is_k ? p.k_pool : p.v_pool) + off;
    dst[j] = __float2bfloat16_rn(x0);
    dst[j + half] = __float2bfloat16_rn(x1);
    if (!is_k || p.kminmax == nullptr) return;
    // kv_metadata.h's update for this one slot (no other thread touches this page, head and dimension),
    // from the key as cached: v is a bf16 value, and so is the min or max of bf16 values, so the bounds
    // round-trip through bf16 exactly.
    const size_t mi = static_cast<size_t>(page) * p.n_kv_heads + kvh;
    bf16* kmin = reinterpret_cast<bf16*>(p.kminmax) + mi * 2 * D;  // [D], followed by kmax [D]
    bf16* kmax = kmin + D;
    float* ksum = p.ksum + mi * D;  // [D]
    auto update = [&](int i, float key) {
        const float v = __bfloat162float(__float2bfloat16_rn(key));
        kmin[i] = __float2bfloat16_rn(slot == 0 ? v : fminf(__bfloat162float(kmin[i]), v));
        kmax[i] = __float2bfloat16_rn(slot == 0 ? v : fmaxf(__bfloat162float(kmax[i]), v));
        ksum[i] = slot == 0 ? v : ksum[i] + v;
    };
    update(j, x0);
    update(j + half, x1);
    if (j == 0) p.count[mi] = slot + 1;
}

// The same, with the rotation's cos and sin computed here.
__device__ __forceinline__ void finish_attention_input_pair(const AttentionInputParams& p, int t, int h,
                                                            int j, float x0, float x1, int pos,
                                                            const int32_t* block_table) {
    float c = 1.0f, s = 0.0f;
    if (h < p.n_heads + p.n_kv_heads) rope_cos_sin(pos, p.inv_freq[j], p.rope_scaling, c, s);
    finish_attention_input_pair(p, t, h, j, x0, x1, pos, block_table, c, s);
}

}  // namespace dsa::cuda
