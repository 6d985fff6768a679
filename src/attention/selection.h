#pragma once
// Token selection of the sparse attention policies for one decode step of one (layer, KV head): pure
// functions over the sequence's page metadata and the group's query vectors. The CPU backend attends what
// they return; the CUDA kernels are tested against them. Semantics (docs/sparse-attention.md):
//
//   n tokens in n_pages = ceil(n / P) pages; page j (block-table position) holds tokens [jP, min(jP + P, n)).
//   The current page (j = n_pages - 1, possibly partial) is always attended by the page policies (quest,
//   nsa) and never competes; the competing pages are 0 .. n_pages - 2 (all complete).
//   Scores are fp32. Ties go to the lower page (token) index.
//   quest:  s_h(j) = sum_i max(q_h,i * kmin_j,i, q_h,i * kmax_j,i) (an upper bound of q_h . k over page j);
//           B / P pages: the current page, sink_pages first pages, recent_pages pages before the current
//           one, and the top-scoring remaining pages.
//   nsa:    s_h(j) = q_h . (ksum_j / count_j); top_n pages among the competing ones: init_blocks first,
//           local_blocks last, the rest by score; plus the current page; plus the tokens [n - window, n).
//   window: tokens [0, sink_tokens) and [n - window, n) (token-granular, no pages).
//   oracle: the B tokens with the largest s_h(t) = q_h . k_t / sqrt(D), reduced over the group (it reads
//           every key: the quality ceiling of a B-token budget, not a fast path). Token-granular: the current
//           page competes like every other token.
//   Group reduction (gqa): sum: sum_h s_h; max: max_h s_h; softmax: sum_h softmax(s_h / sqrt(D)) with the
//   softmax over the competing pages (tokens for the oracle); per-head: each query head selects alone.
//   Attended tokens = the union of the selected pages' tokens and the token ranges, each token once.
//   Dense: layers < dense_layers, the full policy, and any step whose selection covers every token of
//   every head run plain full attention (so a budget >= the context reproduces full attention bit for bit).
#include <cstdint>
#include <span>
#include <vector>

#include "attention/policy.h"

namespace dsa {

// Metadata of one page of one (layer, KV head), from the post-RoPE keys exactly as cached.
struct PageMeta {
    const float* kmin;  // [D] element-wise minimum of the page's keys
    const float* kmax;  // [D] element-wise maximum
    const float* ksum;  // [D] element-wise sum
    int count;          // keys in the page: P, or fewer in the current page
};

struct TokenSpan {
    int begin = 0;  // first token position
    int end = 0;    // one past the last
    bool operator==(const TokenSpan&) const = default;
};

// What one query head (or the whole group) attends.
struct HeadSelection {
    std::vector<int> pages;        // ascending block-table positions selected as whole pages (quest, nsa)
    std::vector<TokenSpan> spans;  // ascending, disjoint, non-adjacent: every token attended, exactly once
    int tokens() const;            // sum of the span lengths
};

struct GroupSelection {
    bool dense = false;                // plain full attention over [0, n) (heads holds that as one selection)
    std::vector<HeadSelection> heads;  // one shared by the group's G query heads, or G (gqa=per-head)
    const HeadSelection& head(int h) const {
        return heads.size() == 1 ? heads[0] : heads[static_cast<size_t>(h)];
    }
};

struct SelectInput {
    const float* q = nullptr;            // [G][D] post-RoPE queries of the group's query heads
    int group_size = 1;                  // G = n_heads / n_kv_heads
    int head_dim = 0;                    // D
    int page_size = 16;                  // P (equals the policy's)
    int n_tokens = 0;                    // cached tokens, the current one included (>= 1)
    std::span<const PageMeta> meta;      // [n_pages] in block-table order
    std::span<const float* const> keys;  // [n_pages] -> [P][D] cached keys; read by the oracle only
};

// The selection of `policy` at `layer` (0-based). Throws dsa::Error when the input is inconsistent
// (n_pages != ceil(n_tokens / P), a page size other than the policy's).
GroupSelection select_tokens(const AttentionPolicy& policy, int layer, const SelectInput& in);

// The policies, for layers past dense_layers; each may return a dense selection (see above).
GroupSelection select_quest(const AttentionPolicy& policy, const SelectInput& in);
GroupSelection select_nsa(const AttentionPolicy& policy, const SelectInput& in);
GroupSelection select_window(const AttentionPolicy& policy, const SelectInput& in);
GroupSelection select_oracle(const AttentionPolicy& policy, const SelectInput& in);
GroupSelection dense_selection(int n_tokens, int page_size);

// ---- building blocks (shared by the policies, and the references of the CUDA kernels) ----

// out[j] = sum_i max(q_i * kmin_j,i, q_i * kmax_j,i) for j < out.size(). q: [D].
void quest_bounds(const float* q, int head_dim, std::span<const PageMeta> meta, std::span<float> out);
// out[j] = q . (ksum_j / count_j) for j < out.size(). q: [D].
void mean_key_scores(const float* q, int head_dim, std::span<const PageMeta> meta, std::span<float> out);

// Reduces per-head scores [G][n] to one score per item [n] (sum, max, or the sum of per-head softmaxes
// of scores * scale). Not for GqaMode::PerHead.
std::vector<float> reduce_group_scores(std::span<const float> scores, int group_size, GqaMode mode,
                                       float scale);

// Positions of the k largest scores among those with eligible[i] != 0 (all when `eligible` is empty),
// ties to the lower index, returned in ascending position order. k larger than the eligible count: all.
std::vector<int> top_k_indices(std::span<const float> scores, int k, std::span<const uint8_t> eligible = {});

// For each selecting head (1 when shared, G for per-head): the ascending union of the `forced` positions
// and the `extra` best other positions in [0, n) by the (reduced) scores. scores: [G][n].
std::vector<std::vector<int>> select_with_forced(std::span<const float> scores, int group_size, int n,
                                                 GqaMode mode, float softmax_scale,
                                                 std::span<const uint8_t> forced, int extra);

// Spans of the union of whole pages (ascending positions; the last one may be partial) and extra token
// ranges, clipped to [0, n_tokens), merged so that they are ascending, disjoint and non-adjacent.
std::vector<TokenSpan> spans_of(std::span<const int> pages, int page_size, int n_tokens,
                                std::span<const TokenSpan> ranges = {});
bool covers_all(std::span<const TokenSpan> spans, int n_tokens);  // spans == {[0, n_tokens)}

}  // namespace dsa
