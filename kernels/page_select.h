#pragma once
// Selection of one decode step on the device: from the per-head scores of page_scores.h to the page lists
// the decode attention kernel (decode_attention.h) reads, with no host round trip. A list is a (sequence, KV
// head) whose G query heads share the selection, or a (sequence, query head) with per_head_lists. Semantics
// are the CPU reference's (attention/selection.h), stated here in its terms:
//
//   items: complete pages 0 .. n_pages - 2 (tokens_are_items: tokens 0 .. n - 1, the oracle). With
//   n_items <= dense_below_or_at the step is dense: the list is the block table (every page, whole), the
//   same entries as full attention, so the attention gives full attention's bits.
//   forced: items j < min(forced_first, n_items) and j >= n_items - forced_last; never compete.
//   picked: the k = max(0, select_total - n_forced) best of the other items by the group-reduced score
//   (sum, max, or sum of per-head softmaxes of score * softmax_scale over all n_items), larger first, ties to
//   the lower index, NaN as -inf; every eligible item when k exceeds them.
//   attended tokens: the union of the forced and picked items, the current page when with_current_page,
//   tokens [0, sink_tokens) and [n - window_tokens, n). The list holds, in ascending position order, one
//   entry per run of attended tokens inside a page: page id and slot range lo | hi << 16.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsa::cuda {

enum class GroupReduce : int { Sum = 0, Max = 1, Softmax = 2 };

struct PageSelectParams {
    const float* scores = nullptr;  // [n_seq][n_heads][score_stride] per-head scores, or null (no ranking)
    int score_stride = 0;
    uint32_t* keys = nullptr;  // [n_seq][n_lists][score_stride] scratch: the reduced scores as ordered keys,
                               // for the items past the 8192 a CTA keeps in shared memory
    const int32_t* block_tables = nullptr;  // [n_seq][table_stride]
    int64_t table_stride = 0;
    const int32_t* seq_len = nullptr;  // [n_seq] tokens cached, the current one included
    // Outputs, list (s, l) at [s * n_lists + l]; n_lists = n_heads with per_head_lists, else n_kv_heads.
    int32_t* page_lists = nullptr;   // [n_seq][n_lists][list_stride] page ids
    int32_t* slot_ranges = nullptr;  // [n_seq][n_lists][list_stride] lo | hi << 16
    int32_t* list_len = nullptr;     // [n_seq][n_lists] entries
    int32_t* attended = nullptr;     // [n_seq][n_lists] tokens attended, or null
    int list_stride = 0;             // >= the most entries a list can take (see page_list_capacity)
    int n_seq = 0, n_heads = 0, n_kv_heads = 0, page_size = 16;
    bool per_head_lists = false;
    // The scores hold each list's reduced scores in the row of its first query head (quest_score with
    // ScoreRows::GroupSum or GroupMax, page_scores.h): read as they are, `reduce` unused.
    bool group_rows = false;

    // The policy, in the terms above.
    bool tokens_are_items = false;
    int dense_below_or_at = 0;
    int forced_first = 0, forced_last = 0, select_total = 0;
    bool with_current_page = true;
    int sink_tokens = 0, window_tokens = 0;
    GroupReduce reduce = GroupReduce::Softmax;
    float softmax_scale = 1.0f;
    // Softmax: the per-chunk partials of page_scores.h ([n_seq][n_heads][chunk_stride], chunks of
    // chunk_items items), combined into each head's max and normaliser.
    const float* chunk_max = nullptr;
    const float* chunk_sum = nullptr;
    int chunk_stride = 0, chunk_items = 1;
};

// Entries a list can need for a sequence of up to max_tokens tokens: a run per page, plus one for a page
// cut by both the sinks and the window, or (tokens_are_items) up to select_total runs.
int page_list_capacity(const PageSelectParams& p, int max_tokens);

// Selects for sequences of up to max_tokens tokens: one CTA per list computes the keys, the k-th largest
// (histogram passes, then a warp's bitwise search), the marks and the list. Shared memory holds a bit per
// item, the staged block table and up to four heads' scores of the first 8192 items.
void page_select(const PageSelectParams& p, int max_tokens, cudaStream_t stream);

}  // namespace dsa::cuda
