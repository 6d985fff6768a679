#include "attention/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/simd.h"

namespace dsa {

namespace {

// The query rows of one (layer, kv head): token t (of n_q) with its G heads, attending the first
// first_len + t tokens of the page list.
struct Rows {
    int layer, kv_head;
    std::span<const int> pages;
    int first_len, n_q, G;
    size_t stride;  // floats between consecutive tokens in q and out
    float scale;
};

// Online softmax page by page, every row of the block per page while its K/V are in cache. Built for AVX2
// and the baseline (same arithmetic, see simd.h). Each row sees the same sequence of operations whatever
// the block it is in. s: [P] scores, m: [n_q * G] running max, l: [n_q * G] running denominator.
__attribute__((target_clones("avx2", "default"))) void attend_rows(const PagedKvCache& cache, const Rows& r,
                                                                   const float* q, float* out, float* s,
                                                                   float* m, float* l) {
    const int P = cache.shape().page_size;
    const int D = cache.shape().head_dim;
    const int last_len = r.first_len + r.n_q - 1;
    const int n_pages = (last_len + P - 1) / P;
    for (int pi = 0; pi < n_pages; ++pi) {
        const float* kp = cache.k(r.layer, r.pages[pi], r.kv_head);  // [P][D]
        const float* vp = cache.v(r.layer, r.pages[pi], r.kv_head);  // [P][D]
        for (int t = 0; t < r.n_q; ++t) {
            const int n = std::min(P, r.first_len + t - pi * P);  // this token's valid keys in the page
            if (n <= 0) continue;
            for (int g = 0; g < r.G; ++g) {
                const size_t row = static_cast<size_t>(t) * r.G + g;
                const float* qg = q + t * r.stride + static_cast<size_t>(g) * D;  // [D]
                float* og = out + t * r.stride + static_cast<size_t>(g) * D;      // [D]
                float page_max = -std::numeric_limits<float>::infinity();
                for (int j = 0; j < n; ++j) {
                    s[j] = simd::dot(qg, kp + static_cast<size_t>(j) * D, D) * r.scale;
                    page_max = std::max(page_max, s[j]);
                }
                const float m_new = std::max(m[row], page_max);
                // Rescale what was accumulated under the old max (exp(-inf) = 0 on the first page).
                const float corr = std::exp(m[row] - m_new);
                l[row] *= corr;
                simd::scale(og, corr, D);
                for (int j = 0; j < n; ++j) {
                    const float p = std::exp(s[j] - m_new);
                    l[row] += p;
                    simd::axpy(og, p, vp + static_cast<size_t>(j) * D, D);
                }
                m[row] = m_new;
            }
        }
    }
}

void attend(const PagedKvCache& cache, const Rows& r, const float* q, float* out) {
    const int P = cache.shape().page_size;
    const int D = cache.shape().head_dim;
    const size_t n_rows = static_cast<size_t>(r.n_q) * r.G;
    // Per thread, reused: scores [P], running max [n_rows], running denominator [n_rows].
    thread_local std::vector<float> scratch;
    const size_t need = P + 2 * n_rows;
    if (scratch.size() < need) scratch.resize(need);
    float* s = scratch.data();
    float* m = s + P;
    float* l = m + n_rows;
    std::fill_n(m, n_rows, -std::numeric_limits<float>::infinity());
    std::fill_n(l, n_rows, 0.0f);
    for (int t = 0; t < r.n_q; ++t) std::fill_n(out + t * r.stride, static_cast<size_t>(r.G) * D, 0.0f);
    attend_rows(cache, r, q, out, s, m, l);
    for (int t = 0; t < r.n_q; ++t)
        for (int g = 0; g < r.G; ++g)
            simd::scale(out + t * r.stride + static_cast<size_t>(g) * D,
                        1.0f / l[static_cast<size_t>(t) * r.G + g], D);
}

}  // namespace

void attend_pages(const PagedKvCache& cache, const PageListAttention& a, const float* q, int G, float* out) {
    const int P = cache.shape().page_size;
    const int n = (static_cast<int>(a.pages.size()) - 1) * P + a.last_page_tokens;
    attend(cache, Rows{a.layer, a.kv_head, a.pages, n, 1, G, 0, a.scale}, q, out);
}

void attend_causal(const PagedKvCache& cache, const CausalBlock& b, const float* q, int G, float* out) {
    attend(cache, Rows{b.layer, b.kv_head, b.pages, b.first_pos + 1, b.n_queries, G, b.stride, b.scale}, q,
           out);
}

}  // namespace dsa
