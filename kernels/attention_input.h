#pragma once
// From the fused q/k/v projection to attention's inputs, one warp per (token, head): q/k/v bias (Qwen2),
// per-head q/k RMSNorm (Qwen3), RoPE on q and k, then q out in bf16 and k/v appended to the paged cache.
// Page metadata: for a single token (decode) this kernel updates it too, from the keys as cached (bf16),
// saving a launch per layer; a chunk of several tokens updates it with kv_metadata.h afterwards.
// The tokens belong to n_seq sequences, n_tokens / n_seq consecutive tokens each: a prefill chunk is one
// sequence, a batched decode step is n_seq sequences of one token.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsa::cuda {

struct AttentionInputParams {
    const float* qkv = nullptr;  // [n_tokens][(n_heads + 2 * n_kv_heads) * D] fp32: q heads, k heads, v heads
    const float* bias = nullptr;      // [(n_heads + 2 * n_kv_heads) * D] fp32, or null
    const float* q_norm = nullptr;    // [D] fp32, or null (no q/k norm)
    const float* k_norm = nullptr;    // [D] fp32, or null
    const float* inv_freq = nullptr;  // [D / 2] fp32
    float rope_scaling = 1.0f;        // cos/sin multiplier (yarn attention scaling)
    float norm_eps = 1e-6f;
    // Read on the device, so a captured graph replays with new values.
    const int32_t* start_pos = nullptr;     // [n_seq] position of each sequence's first token of the chunk
    const int32_t* block_tables = nullptr;  // [n_seq][table_stride] page id of each block of a sequence
    int64_t table_stride = 0;
    uint16_t* q_out = nullptr;   // [n_tokens][n_heads][D] bf16
    uint16_t* k_pool = nullptr;  // [num_pages][n_kv_heads][P][D] bf16 (this layer's pool)
    uint16_t* v_pool = nullptr;  // [num_pages][n_kv_heads][P][D] bf16
    // Page metadata (one token per sequence only; kminmax null: not updated here): see kv_metadata.h.
    uint16_t* kminmax = nullptr;  // [num_pages][n_kv_heads][2][D] bf16: D kmin, then D kmax
    float* ksum = nullptr;        // [num_pages][n_kv_heads][D]
    int32_t* count = nullptr;     // [num_pages][n_kv_heads]
    int n_tokens = 0, n_seq = 1, n_heads = 0, n_kv_heads = 0, head_dim = 0, page_size = 16;
};

// head_dim must be even and at most 256; n_tokens a multiple of n_seq; distinct sequences own distinct pages.
void attention_input(const AttentionInputParams& p, cudaStream_t stream);

}  // namespace dsa::cuda
