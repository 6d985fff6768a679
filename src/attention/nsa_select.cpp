// Training-free NSA-style selection (after DeepSeek's Native Sparse Attention, 2025): the compressed key of
// a page is its mean key; pages are ranked by the group's summed attention probability over the compressed
// keys; the initial and local blocks are always taken; a sliding window of recent tokens is added; the
// attention runs once over the deduplicated union (NSA's three branches and learned gates are not used).
#include <algorithm>
#include <cmath>

#include "attention/selection.h"

namespace dsa {

void mean_key_scores(const float* q, int head_dim, std::span<const PageMeta> meta, std::span<float> out) {
    for (size_t j = 0; j < out.size(); ++j) {
        const PageMeta& m = meta[j];
        const float inv = 1.0f / static_cast<float>(m.count);
        float s = 0.0f;
        for (int i = 0; i < head_dim; ++i) s += q[i] * (m.ksum[i] * inv);
        out[j] = s;
    }
}

GroupSelection select_nsa(const AttentionPolicy& policy, const SelectInput& in) {
    const int n_pages = static_cast<int>(in.meta.size());
    const int current = n_pages - 1;  // the complete pages 0 .. current - 1 compete
    if (current <= policy.top_n) return dense_selection(in.n_tokens, in.page_size);

    const size_t n = static_cast<size_t>(current), d = static_cast<size_t>(in.head_dim);
    std::vector<float> scores(static_cast<size_t>(in.group_size) * n);  // [G][n_pages - 1]
    for (size_t h = 0; h < static_cast<size_t>(in.group_size); ++h) {
        mean_key_scores(in.q + h * d, in.head_dim, in.meta, std::span<float>(scores).subspan(h * n, n));
    }
    std::vector<uint8_t> forced(n, 0);  // [n_pages - 1]
    for (int j = 0; j < std::min(policy.init_blocks, current); ++j) forced[static_cast<size_t>(j)] = 1;
    for (int j = std::max(0, current - policy.local_blocks); j < current; ++j)
        forced[static_cast<size_t>(j)] = 1;
    const int n_forced = static_cast<int>(std::count(forced.begin(), forced.end(), 1));
    const int extra = policy.top_n - n_forced;  // >= 0: validate_policy keeps init + local <= top_n

    const TokenSpan window{in.n_tokens - policy.window, in.n_tokens};
    const std::span<const TokenSpan> ranges =
        policy.window > 0 ? std::span<const TokenSpan>(&window, 1) : std::span<const TokenSpan>();
    GroupSelection sel;
    bool all_cover = true;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.head_dim));
    for (std::vector<int>& pages :
         select_with_forced(scores, in.group_size, current, policy.gqa, scale, forced, extra)) {
        pages.push_back(current);
        HeadSelection head;
        head.spans = spans_of(pages, in.page_size, in.n_tokens, ranges);
        head.pages = std::move(pages);
        all_cover = all_cover && covers_all(head.spans, in.n_tokens);
        sel.heads.push_back(std::move(head));
    }
    return all_cover ? dense_selection(in.n_tokens, in.page_size) : sel;
}

}  // namespace dsa
