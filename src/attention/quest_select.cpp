// Quest (Tang et al., ICML 2024): rank pages by an upper bound of q . k over the page, computed from the
// page's element-wise key min/max, and attend the B / P best pages.
#include <algorithm>
#include <cmath>

#include "attention/selection.h"

namespace dsa {

void quest_bounds(const float* q, int head_dim, std::span<const PageMeta> meta, std::span<float> out) {
    for (size_t j = 0; j < out.size(); ++j) {
        const PageMeta& m = meta[j];
        float u = 0.0f;
        for (int i = 0; i < head_dim; ++i) u += std::max(q[i] * m.kmin[i], q[i] * m.kmax[i]);
        out[j] = u;
    }
}

GroupSelection select_quest(const AttentionPolicy& policy, const SelectInput& in) {
    const int n_pages = static_cast<int>(in.meta.size());
    const int current = n_pages - 1;
    const int budget_pages = policy.budget / policy.page_size;
    if (budget_pages >= n_pages) return dense_selection(in.n_tokens, in.page_size);

    const size_t n = static_cast<size_t>(current), d = static_cast<size_t>(in.head_dim);
    std::vector<float> scores(static_cast<size_t>(in.group_size) * n);  // [G][n_pages - 1]
    for (size_t h = 0; h < static_cast<size_t>(in.group_size); ++h) {
        quest_bounds(in.q + h * d, in.head_dim, in.meta, std::span<float>(scores).subspan(h * n, n));
    }
    std::vector<uint8_t> forced(n, 0);  // [n_pages - 1]
    for (int j = 0; j < std::min(policy.sink_pages, current); ++j) forced[static_cast<size_t>(j)] = 1;
    for (int j = std::max(0, current - policy.recent_pages); j < current; ++j)
        forced[static_cast<size_t>(j)] = 1;
    const int n_forced = static_cast<int>(std::count(forced.begin(), forced.end(), 1));
    const int extra =
        budget_pages - 1 - n_forced;  // >= 0: validate_policy keeps sinks + recents + 1 <= B / P

    GroupSelection sel;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.head_dim));
    for (std::vector<int>& pages :
         select_with_forced(scores, in.group_size, current, policy.gqa, scale, forced, extra)) {
        pages.push_back(current);
        HeadSelection head;
        head.spans = spans_of(pages, in.page_size, in.n_tokens);
        head.pages = std::move(pages);
        sel.heads.push_back(std::move(head));
    }
    return sel;
}

}  // namespace dsa
