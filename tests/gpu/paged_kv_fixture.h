#pragma once
// A paged KV pool for the attention tests: random bf16 keys/values in the slots sequences own, NaN in every
// other slot (so a kernel reading past a sequence's tokens poisons its output), random page placement.
#include <algorithm>
#include <numeric>
#include <vector>

#include "gpu_test_util.h"

namespace dsa::test {

struct PagedKv {
    int num_pages = 0, n_kv_heads = 0, page_size = 0, head_dim = 0;
    std::vector<uint16_t> k, v;           // [num_pages][n_kv_heads][P][D] bf16 bits
    std::vector<std::vector<int>> pages;  // per sequence: its block table
    std::vector<int> lengths;             // per sequence: tokens cached

    size_t index(int page, int h, int slot) const {
        return ((static_cast<size_t>(page) * n_kv_heads + h) * page_size + slot) * head_dim;
    }
    size_t at(int seq, int h, int pos) const {
        return index(pages[static_cast<size_t>(seq)][static_cast<size_t>(pos / page_size)], h,
                     pos % page_size);
    }
    float kf(size_t i) const { return bf16_to_f32(k[i]); }
    float vf(size_t i) const { return bf16_to_f32(v[i]); }
};

constexpr uint16_t kBf16Nan = 0xFFFF;

// Sequences of the given lengths, pages drawn in random order from a pool with `spare` unused pages.
inline PagedKv make_paged_kv(Rng& rng, const std::vector<int>& lengths, int n_kv_heads, int page_size,
                             int head_dim, int spare = 3) {
    PagedKv kv;
    kv.n_kv_heads = n_kv_heads;
    kv.page_size = page_size;
    kv.head_dim = head_dim;
    kv.lengths = lengths;
    int total = spare;
    for (int len : lengths) total += (len + page_size - 1) / page_size;
    kv.num_pages = total;
    std::vector<int> order(static_cast<size_t>(total));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng.gen());
    size_t next = 0;
    const size_t n = static_cast<size_t>(total) * n_kv_heads * page_size * head_dim;
    kv.k.assign(n, kBf16Nan);
    kv.v.assign(n, kBf16Nan);
    for (size_t s = 0; s < lengths.size(); ++s) {
        std::vector<int> bt;
        for (int p = 0; p < (lengths[s] + page_size - 1) / page_size; ++p) bt.push_back(order[next++]);
        kv.pages.push_back(bt);
        for (int h = 0; h < n_kv_heads; ++h)
            for (int pos = 0; pos < lengths[s]; ++pos) {
                const size_t i = kv.at(static_cast<int>(s), h, pos);
                for (int d = 0; d < head_dim; ++d) {
                    kv.k[i + d] = f32_to_bf16(rng.normal());
                    kv.v[i + d] = f32_to_bf16(rng.normal());
                }
            }
    }
    return kv;
}

// Reference attention of one query over a set of cached positions, in double precision.
inline void reference_attention(const PagedKv& kv, int seq, int kv_head, const float* q,
                                const std::vector<int>& positions, float scale, float* out) {
    const int D = kv.head_dim;
    std::vector<double> s(positions.size());
    double mx = -1e300;
    for (size_t j = 0; j < positions.size(); ++j) {
        const size_t i = kv.at(seq, kv_head, positions[j]);
        double dot = 0;
        for (int d = 0; d < D; ++d) dot += double(q[d]) * kv.kf(i + d);
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
    }
    double den = 0;
    for (double& x : s) den += (x = std::exp(x - mx));
    for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (size_t j = 0; j < positions.size(); ++j)
            acc += s[j] * kv.vf(kv.at(seq, kv_head, positions[j]) + d);
        out[d] = static_cast<float>(acc / den);
    }
}

}  // namespace dsa::test
