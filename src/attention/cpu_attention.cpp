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

// s[j] = (qg · k_j) * scale for j < n, four keys at a time sharing the loads of qg: per key the lanes and the
// reduction of simd::dot exactly.
[[gnu::always_inline]] inline void scores(const float* qg, const float* kp, int n, int D, float scale,
                                          float* s) {
    const int D8 = D & ~7;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const float* k[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) k[r] = kp + static_cast<size_t>(j + r) * D;
        simd::f32x8 acc[4] = {};
        for (int i = 0; i < D8; i += 8) {
            simd::f32x8 vq;
            simd::load8(vq, qg + i);
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) {
                simd::f32x8 vk;
                simd::load8(vk, k[r] + i);
                acc[r] += vq * vk;
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
            float tail = 0.0f;
            for (int i = D8; i < D; ++i) tail += qg[i] * k[r][i];
            s[j + r] = (simd::hsum8(acc[r]) + tail) * scale;
        }
    }
    for (; j < n; ++j) s[j] = simd::dot(qg, kp + static_cast<size_t>(j) * D, D) * scale;
}

// og[0, 8C) = og * corr + sum_j p[j] * v_j[0, 8C), the C vectors of og in registers across the n values
// (C independent add chains). vp: [n][D], already offset to the lanes.
template <int C>
[[gnu::always_inline]] inline void accumulate_lanes(float* og, float corr, const float* p, const float* vp,
                                                    int n, int D) {
    simd::f32x8 o[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
        simd::load8(o[c], og + 8 * c);
        o[c] *= corr;
    }
    for (int j = 0; j < n; ++j) {
        const float* v = vp + static_cast<size_t>(j) * D;
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
            simd::f32x8 vc;
            simd::load8(vc, v + 8 * c);
            o[c] += p[j] * vc;
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) simd::store8(og + 8 * c, o[c]);
}

// og = og * corr + sum_j p[j] * v_j: per element the operations of simd::scale, then simd::axpy for each j
// in order. 32 lanes at a time, four independent add chains (one chain waited on the add latency for
// every value: 4 cycles per 8 lanes), then 8, then the scalar tail.
[[gnu::always_inline]] inline void rescale_accumulate(float* og, float corr, const float* p, const float* vp,
                                                      int n, int D) {
    int i = 0;
    for (; i + 32 <= D; i += 32) accumulate_lanes<4>(og + i, corr, p, vp + i, n, D);
    for (; i + 8 <= D; i += 8) accumulate_lanes<1>(og + i, corr, p, vp + i, n, D);
    for (; i < D; ++i) {
        float o = og[i] * corr;
        for (int j = 0; j < n; ++j) o += p[j] * vp[static_cast<size_t>(j) * D + i];
        og[i] = o;
    }
}

// One step of the online softmax of one query row over n consecutive cached keys/values: the scores go to
// s (then their exponentials), the row's running max m and denominator l are updated and its accumulator
// og rescaled to the new max. Every path (page lists, causal blocks, spans) takes its steps through here,
// so equal steps give equal bits. qg, og: [D]; kp, vp: [n][D]; s: [P].
[[gnu::always_inline]] inline void online_step(const float* qg, const float* kp, const float* vp, int n,
                                               int D, float scale, float* s, float& m, float& l, float* og) {
    scores(qg, kp, n, D, scale, s);
    float page_max = -std::numeric_limits<float>::infinity();
    for (int j = 0; j < n; ++j) page_max = std::max(page_max, s[j]);
    const float m_new = std::max(m, page_max);
    // Rescale what was accumulated under the old max (exp(-inf) = 0 on the first step).
    const float corr = std::exp(m - m_new);
    l *= corr;
    for (int j = 0; j < n; ++j) {
        s[j] = std::exp(s[j] - m_new);
        l += s[j];
    }
    rescale_accumulate(og, corr, s, vp, n, D);
    m = m_new;
}

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
                online_step(q + t * r.stride + static_cast<size_t>(g) * D, kp, vp, n, D, r.scale, s, m[row],
                            l[row], out + t * r.stride + static_cast<size_t>(g) * D);
            }
        }
    }
}

// The spans' tokens page by page: a span's part of page j (slots [first, end)) is one online step for
// each of the G rows. Same build and arithmetic as attend_rows.
__attribute__((target_clones("avx2", "default"))) void attend_span_rows(const PagedKvCache& cache,
                                                                        const SpanAttention& a,
                                                                        const float* q, int G, float* out,
                                                                        float* s, float* m, float* l) {
    const int P = cache.shape().page_size;
    const int D = cache.shape().head_dim;
    for (const TokenSpan& sp : a.spans) {
        for (int t = sp.begin; t < sp.end;) {
            const int page = t / P, first = t % P;
            const int end = std::min(P, sp.end - page * P);
            const int id = a.block_table[static_cast<size_t>(page)];
            const float* kp = cache.k(a.layer, id, a.kv_head) + static_cast<size_t>(first) * D;  // [n][D]
            const float* vp = cache.v(a.layer, id, a.kv_head) + static_cast<size_t>(first) * D;  // [n][D]
            for (int g = 0; g < G; ++g) {
                online_step(q + static_cast<size_t>(g) * D, kp, vp, end - first, D, a.scale, s, m[g], l[g],
                            out + static_cast<size_t>(g) * D);
            }
            t = page * P + end;
        }
    }
}

// Per-thread scratch for n_rows query rows, reused across calls: scores s [P], running max m [n_rows]
// (set to -inf), running denominator l [n_rows] (set to 0).
struct Scratch {
    float *s, *m, *l;
};
Scratch scratch_for(int P, size_t n_rows) {
    thread_local std::vector<float> buf;
    const size_t need = P + 2 * n_rows;
    if (buf.size() < need) buf.resize(need);
    Scratch sc{buf.data(), buf.data() + P, buf.data() + P + n_rows};
    std::fill_n(sc.m, n_rows, -std::numeric_limits<float>::infinity());
    std::fill_n(sc.l, n_rows, 0.0f);
    return sc;
}

void attend(const PagedKvCache& cache, const Rows& r, const float* q, float* out) {
    const int D = cache.shape().head_dim;
    const Scratch sc = scratch_for(cache.shape().page_size, static_cast<size_t>(r.n_q) * r.G);
    for (int t = 0; t < r.n_q; ++t) std::fill_n(out + t * r.stride, static_cast<size_t>(r.G) * D, 0.0f);
    attend_rows(cache, r, q, out, sc.s, sc.m, sc.l);
    for (int t = 0; t < r.n_q; ++t)
        for (int g = 0; g < r.G; ++g)
            simd::scale(out + t * r.stride + static_cast<size_t>(g) * D,
                        1.0f / sc.l[static_cast<size_t>(t) * r.G + g], D);
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

void attend_spans(const PagedKvCache& cache, const SpanAttention& a, const float* q, int G, float* out) {
    const int D = cache.shape().head_dim;
    const Scratch sc = scratch_for(cache.shape().page_size, static_cast<size_t>(G));
    std::fill_n(out, static_cast<size_t>(G) * D, 0.0f);
    attend_span_rows(cache, a, q, G, out, sc.s, sc.m, sc.l);
    for (int g = 0; g < G; ++g) simd::scale(out + static_cast<size_t>(g) * D, 1.0f / sc.l[g], D);
}

double attention_recall(const PagedKvCache& cache, int layer, int kv_head, std::span<const int> block_table,
                        int n_tokens, std::span<const TokenSpan> spans, float scale, const float* q) {
    const int P = cache.shape().page_size, D = cache.shape().head_dim;
    thread_local std::vector<double> s;  // [n_tokens] scaled scores
    s.resize(static_cast<size_t>(n_tokens));
    double m = -std::numeric_limits<double>::infinity();
    for (int t = 0; t < n_tokens; ++t) {
        const float* k = cache.k(layer, block_table[static_cast<size_t>(t / P)], kv_head) +
                         static_cast<size_t>(t % P) * D;  // [D]
        s[static_cast<size_t>(t)] = static_cast<double>(simd::dot(q, k, D)) * scale;
        m = std::max(m, s[static_cast<size_t>(t)]);
    }
    double total = 0, inside = 0;
    size_t si = 0;
    for (int t = 0; t < n_tokens; ++t) {
        const double p = std::exp(s[static_cast<size_t>(t)] - m);
        total += p;
        while (si < spans.size() && spans[si].end <= t) ++si;
        if (si < spans.size() && spans[si].begin <= t) inside += p;
    }
    return inside / total;
}

}  // namespace dsa
