#pragma once
// Causal flash attention for prefill chunks over the paged KV cache (tensor cores, mma.sync bf16, fp32
// accumulation, online softmax). The chunk's own K/V are appended to the cache first; query i of sequence
// s sits at position pos_start[s] + i and attends to cached positions [0, pos_start[s] + i]. So a prompt
// prefilled in several chunks attends to everything before it, and one launch can carry several sequences
// of different lengths (varlen: q_start gives each one's rows).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "util/dtype.h"

namespace dsa::cuda {

struct PrefillAttentionParams {
    const uint16_t* q = nullptr;            // [total_q][n_heads][D] bf16, post-RoPE
    const uint16_t* k_pool = nullptr;       // [num_pages][n_kv_heads][P][D] bf16 (this layer's pool)
    const uint16_t* v_pool = nullptr;       // [num_pages][n_kv_heads][P][D] bf16
    const int32_t* block_tables = nullptr;  // [n_seq][block_table_stride] page ids
    int block_table_stride = 0;
    const int32_t* q_start = nullptr;    // [n_seq + 1] first row of each sequence in q / out
    const int32_t* pos_start = nullptr;  // [n_seq] position of each sequence's first query
    void* out = nullptr;                 // [total_q][n_heads][D] in out_dtype
    DType out_dtype = DType::BF16;
    int n_seq = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, page_size = 16;
    int max_q_len = 0;  // longest q_start[s + 1] - q_start[s] (sizes the grid)
    float scale = 1.0f;
    // Tile configuration (head_dim 128 only; others always use 0). 16 query rows per warp, Q in registers:
    // 0: 4 warps (64 rows per CTA), 2 K/V stages; 1: 8 warps, 2 stages; 2: 4 warps, 3 stages; 3: 8 warps,
    // 3 stages. 32 rows per warp, Q in shared memory: 4: 4 warps (128 rows), 2 stages; 5: 4 warps, 3 stages;
    // 6: 8 warps (256 rows), 2 stages; 7: 8 warps, 3 stages. Variants 8-10 are 6, 7 and 4 with the online
    // softmax over 32 keys at a time instead of the tile's 64 (32 fewer live registers).
    int variant = 0;
};

constexpr int kPrefillAttentionVariants = 11;

// The variant the CUDA backend runs for head_dim 128 (the fastest measured, docs/perf.md "Prefill");
// `cuda_bench model --prefill-variants` sets others to time the whole prefill with each.
void set_prefill_attention_variant(int variant);
int prefill_attention_variant();

// head_dim: a multiple of 16 up to 128; page_size: a power of two (K/V rows are gathered one by one).
void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream);

}  // namespace dsa::cuda
