#pragma once
// Decode attention over the paged KV cache: one query token per sequence, GQA-aware and split-KV.
//
// Work: one CTA per (split, KV head, sequence) holds all G query heads of the KV group as the 16 rows of a
// tensor-core tile, so each K/V page is read from memory once for the whole group. The pages of a
// (sequence, KV head) are given as a list (page ids), so the sparse policies pass their selection and
// reuse this kernel unchanged; the full policy passes the block table (list_head_stride = 0 shares it
// across heads). The list is cut into n_split ranges of 16-token tiles; each split writes its normalised
// partial output and log-sum-exp. With `out` set, the last CTA of each group to finish (an atomic ticket per
// group in `counters`) merges them in the same launch; without, attention_merge (attention_merge.h) does it
// in a second one. A split that gets no tile writes lse = -inf and nothing else, so the grid can be sized
// once (CUDA graphs) for any context length.
//
// Token validity: entry e of a list covers slots [lo, hi) of its page. Without slot_ranges every entry is a
// full page except the list's last, which must be the sequence's current page and holds
// seq_len - (ceil(seq_len / P) - 1) * P tokens. With slot_ranges, entry e's range is
// lo = r & 0xffff, hi = r >> 16 for r = slot_ranges[...e].
#include <cuda_runtime_api.h>

#include <cstdint>

#include "util/dtype.h"

namespace dsa::cuda {

struct DecodeAttentionParams {
    const uint16_t* q = nullptr;       // [n_seq][n_heads][D] bf16, post-RoPE
    const uint16_t* k_pool = nullptr;  // [num_pages][n_kv_heads][P][D] bf16 (this layer's pool)
    const uint16_t* v_pool = nullptr;  // [num_pages][n_kv_heads][P][D] bf16
    // Entry e of list (s, h) is page_lists[s * list_seq_stride + h * list_head_stride + e].
    const int32_t* page_lists = nullptr;
    const int32_t* slot_ranges = nullptr;  // same indexing as page_lists, or null (see above)
    const int32_t* list_len = nullptr;     // [n_seq][n_kv_heads] entries per list, or null: ceil(seq_len / P)
    const int32_t* seq_len = nullptr;      // [n_seq] tokens cached per sequence, the current one included
    int64_t list_seq_stride = 0, list_head_stride = 0;
    float* o_part = nullptr;  // [n_seq][n_heads][n_split][D] fp32: each split's normalised output
    float* lse_part =
        nullptr;  // [n_seq][n_heads][n_split] fp32: log2-sum-exp2 of scaled scores, -inf if empty
    int n_seq = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, page_size = 16;
    // One list per query head (gqa=per-head): list (s, h) is read by a CTA of query head h alone, with KV
    // head h / G, so a K/V page selected by several heads is read once per head. counters then hold
    // [n_seq][n_heads] tickets.
    bool per_head_lists = false;
    int n_split = 1;              // grid.x; see decode_attention_splits
    int min_tiles_per_split = 4;  // a split covers at least this many 16-token tiles (fewer active splits)
    float scale = 1.0f;           // softmax scale, 1/sqrt(D)
    // Fused merge (optional): out [n_seq][n_heads][D] in out_dtype; counters [n_seq][n_kv_heads][ceil(G /
    // 16)] int32, zero before the first launch (each launch leaves them zero again).
    void* out = nullptr;
    DType out_dtype = DType::BF16;
    int32_t* counters = nullptr;
};

// Splits that fill the device (2 CTAs of 4 warps per multiprocessor) for n_seq * n_kv_heads groups, at most
// 256 (the fused merge's limit).
int decode_attention_splits(int n_seq, int n_heads, int n_kv_heads, int sm_count);

// head_dim: a multiple of 16 up to 128; page_size: 16 times a power of two (16, 32, 64, ...).
void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace dsa::cuda
