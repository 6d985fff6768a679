#pragma once
// From the fused q/k/v projection to attention's inputs, one warp per (token, head): q/k/v bias (Qwen2),
// per-head q/k RMSNorm (Qwen3), RoPE on q and k, then q out in bf16 and k/v appended to the paged cache.
// Page metadata: for a single token (decode) this kernel updates it too, from the keys as cached (bf16),
// saving a launch per layer; a chunk of several tokens updates it with kv_metadata.h afterwards.
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
    const int32_t* start_pos = nullptr;    // [1] device: position of token 0 (read on the device: graph-safe)
    const int32_t* block_table = nullptr;  // [pages] device: page id of each block of the sequence
    uint16_t* q_out = nullptr;             // [n_tokens][n_heads][D] bf16
    uint16_t* k_pool = nullptr;            // [num_pages][n_kv_heads][P][D] bf16 (this layer's pool)
    uint16_t* v_pool = nullptr;            // [num_pages][n_kv_heads][P][D] bf16
    // Page metadata (n_tokens == 1 only; kminmax null: not updated here): see kv_metadata.h.
    uint16_t* kminmax = nullptr;  // [num_pages][n_kv_heads][2][D] bf16: D kmin, then D kmax
    float* ksum = nullptr;        // [num_pages][n_kv_heads][D]
    int32_t* count = nullptr;     // [num_pages][n_kv_heads]
    int n_tokens = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, page_size = 16;
};

// head_dim must be even and at most 256.
void attention_input(const AttentionInputParams& p, cudaStream_t stream);

}  // namespace dsa::cuda
