// Top-k selection with a total order: larger score first, then the lower index (NaN ranks last), so the
// CPU reference and the CUDA kernels pick the same set whenever the scores are equal.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/selection.h"

namespace dsa {

std::vector<int> top_k_indices(std::span<const float> scores, int k, std::span<const uint8_t> eligible) {
    std::vector<int> idx;
    idx.reserve(scores.size());
    for (size_t i = 0; i < scores.size(); ++i) {
        if (eligible.empty() || eligible[i] != 0) idx.push_back(static_cast<int>(i));
    }
    if (k <= 0) return {};
    if (static_cast<size_t>(k) >= idx.size()) return idx;
    const auto key = [&](int i) {
        const float s = scores[static_cast<size_t>(i)];
        return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s;
    };
    const auto better = [&](int a, int b) {
        const float sa = key(a), sb = key(b);
        return sa > sb || (sa == sb && a < b);
    };
    std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
    idx.resize(static_cast<size_t>(k));
    std::sort(idx.begin(), idx.end());
    return idx;
}

}  // namespace dsa
