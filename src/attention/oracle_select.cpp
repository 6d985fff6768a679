// The oracle: the B tokens of largest true attention score. With the default softmax reduction it picks
// the B-token set holding the most full-attention probability summed over the group's heads, i.e. the
// best attention recall any B-token selection can reach: the ceiling the other policies are measured by.
#include <cmath>

#include "attention/selection.h"

namespace dsa {

GroupSelection select_oracle(const AttentionPolicy& policy, const SelectInput& in) {
    const int n = in.n_tokens;
    if (policy.budget >= n) return dense_selection(n, in.page_size);

    const size_t un = static_cast<size_t>(n), d = static_cast<size_t>(in.head_dim);
    const size_t p = static_cast<size_t>(in.page_size);
    std::vector<float> scores(static_cast<size_t>(in.group_size) * un);  // [G][n]
    for (size_t h = 0; h < static_cast<size_t>(in.group_size); ++h) {
        const float* q = in.q + h * d;  // [D]
        for (size_t t = 0; t < un; ++t) {
            const float* k = in.keys[t / p] + (t % p) * d;  // [D]
            float s = 0.0f;
            for (size_t i = 0; i < d; ++i) s += q[i] * k[i];
            scores[h * un + t] = s;
        }
    }
    GroupSelection sel;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.head_dim));
    for (const std::vector<int>& tokens :
         select_with_forced(scores, in.group_size, n, policy.gqa, scale, {}, policy.budget)) {
        std::vector<TokenSpan> ranges;
        ranges.reserve(tokens.size());
        for (int t : tokens) ranges.push_back({t, t + 1});
        HeadSelection head;
        head.spans = spans_of({}, in.page_size, n, ranges);
        sel.heads.push_back(std::move(head));
    }
    return sel;
}

}  // namespace dsa
