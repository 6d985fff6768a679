#pragma once
// Per-query-head scores of the items a sparse policy ranks, for one decode step (one query token per
// sequence), written for page_select.h to reduce over the GQA group and pick from. The same functions as
// the CPU reference (attention/selection.h), in fp32 from the device's metadata:
//   quest_score:  s_h(j) = sum_i max(q_h,i * kmin_j,i, q_h,i * kmax_j,i)   j < n_pages - 1 (complete pages)
//   nsa_score:    s_h(j) = q_h . (ksum_j / count_j)                        j < n_pages - 1
//   oracle_score: s_h(t) = q_h . k_t                                        t < n_tokens (every cached key)
// The current (last) page never competes, so quest/nsa score n_pages - 1 pages. One CTA covers a chunk of
// pages (tokens) of one (sequence, KV head) for all G query heads of the group, so each page's metadata is
// read once per step, not G times: the read is the cost (bytes in docs/perf.md). The grid is sized for
// max_items, not the step's length (read on the device), so the launch can live in a CUDA graph; CTAs past
// a sequence's items exit at once.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsa::cuda {

// What quest_score writes per item: each query head's score, or the group's reduction of them in the CPU's
// order (reduce_group_scores: from head 0, sum or max) into the row of the group's first head, so that the
// selection reads one row per list instead of G (see page_select.h, group_rows).
enum class ScoreRows : int { PerHead = 0, GroupSum = 1, GroupMax = 2 };

struct PageScoreParams {
    const uint16_t* q = nullptr;            // [n_seq][n_heads][D] bf16, post-RoPE (the decode queries)
    const uint16_t* kminmax = nullptr;      // quest: [num_pages][n_kv_heads][2][D] bf16, kmin then kmax
    const float* ksum = nullptr;            // nsa: [num_pages][n_kv_heads][D] fp32
    const int32_t* count = nullptr;         // nsa: [num_pages][n_kv_heads] keys in the page
    const uint16_t* k_pool = nullptr;       // oracle: [num_pages][n_kv_heads][P][D] bf16
    const int32_t* block_tables = nullptr;  // [n_seq][table_stride] page id of each block of a sequence
    int64_t table_stride = 0;
    const int32_t* seq_len = nullptr;  // [n_seq] tokens cached, the current one included
    float* scores = nullptr;  // [n_seq][n_heads][score_stride] fp32; entries past the items unwritten
    int score_stride = 0;     // >= max_items
    // Optional (gqa=softmax): per chunk c of score_chunk_items items, per head, the chunk's max of
    // score * softmax_scale and sum of exp(score * softmax_scale - max), so that page_select gets each
    // head's softmax normaliser without another pass over the scores. [n_seq][n_heads][chunk_stride] each.
    float* chunk_max = nullptr;
    float* chunk_sum = nullptr;
    int chunk_stride = 0;  // >= ceil(max_items / score_chunk_items)
    float softmax_scale = 1.0f;
    int max_items = 0;                    // the grid's reach: pages - 1 (quest, nsa) or tokens (oracle)
    ScoreRows rows = ScoreRows::PerHead;  // quest_score only; the others write per-head rows
    int n_seq = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, page_size = 16;
};

// Items one CTA scores: the chunks of chunk_max / chunk_sum.
int score_chunk_items(bool tokens);  // 64 pages (quest, nsa), 256 tokens (oracle)

// head_dim: a multiple of 16 up to 128 (the decode kernel's head dims); group size G at most 16.
void quest_score(const PageScoreParams& p, cudaStream_t stream);
void nsa_score(const PageScoreParams& p, cudaStream_t stream);
void oracle_score(const PageScoreParams& p, cudaStream_t stream);

}  // namespace dsa::cuda
