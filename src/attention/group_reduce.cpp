// GQA: the query heads of a group share one KV head, so by default they share one selection, ranked by
// a reduction of their per-head scores; per-head mode lets every query head select on its own.
#include <algorithm>
#include <cmath>

#include "attention/selection.h"
#include "util/error.h"

namespace dsa {

std::vector<float> reduce_group_scores(std::span<const float> scores, int group_size, GqaMode mode,
                                       float scale) {
    const size_t g = static_cast<size_t>(group_size);
    const size_t n = g > 0 ? scores.size() / g : 0;
    std::vector<float> out(n, 0.0f);  // [n]
    if (n == 0) return out;
    for (size_t h = 0; h < g; ++h) {
        const std::span<const float> row = scores.subspan(h * n, n);  // [n]
        switch (mode) {
            case GqaMode::Sum:
                for (size_t j = 0; j < n; ++j) out[j] += row[j];
                break;
            case GqaMode::Max:
                for (size_t j = 0; j < n; ++j) out[j] = h == 0 ? row[j] : std::max(out[j], row[j]);
                break;
            case GqaMode::Softmax: {
                float m = row[0] * scale;
                for (size_t j = 1; j < n; ++j) m = std::max(m, row[j] * scale);
                std::vector<float> e(n);  // [n]
                float sum = 0.0f;
                for (size_t j = 0; j < n; ++j) {
                    e[j] = std::exp(row[j] * scale - m);
                    sum += e[j];
                }
                for (size_t j = 0; j < n; ++j) out[j] += e[j] / sum;
                break;
            }
            case GqaMode::PerHead:
                throw Error("reduce_group_scores: per-head mode has no group reduction");
        }
    }
    return out;
}

std::vector<std::vector<int>> select_with_forced(std::span<const float> scores, int group_size, int n,
                                                 GqaMode mode, float softmax_scale,
                                                 std::span<const uint8_t> forced, int extra) {
    const size_t un = static_cast<size_t>(n);
    std::vector<uint8_t> eligible(un, 1);  // [n]
    std::vector<int> forced_list;
    for (size_t j = 0; j < forced.size() && j < un; ++j) {
        if (forced[j] != 0) {
            eligible[j] = 0;
            forced_list.push_back(static_cast<int>(j));
        }
    }
    const auto merged = [&](std::vector<int> picked) {
        picked.insert(picked.end(), forced_list.begin(), forced_list.end());
        std::sort(picked.begin(), picked.end());
        return picked;
    };
    std::vector<std::vector<int>> out;
    if (mode == GqaMode::PerHead) {
        for (size_t h = 0; h < static_cast<size_t>(group_size); ++h) {
            out.push_back(merged(top_k_indices(scores.subspan(h * un, un), extra, eligible)));
        }
    } else {
        const std::vector<float> reduced = reduce_group_scores(scores, group_size, mode, softmax_scale);
        out.push_back(merged(top_k_indices(reduced, extra, eligible)));
    }
    return out;
}

}  // namespace dsa
