// Sparse decode attention on the CPU reference: attention over token spans and attention recall against
// brute force, and whole-model runs where a budget covering the context must reproduce full attention
// bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "attention/cpu_attention.h"
#include "backend/cpu/cpu_backend.h"
#include "engine/generator.h"
#include "model/model.h"
#include "util/error.h"

namespace dsa {
namespace {

// One layer, one KV head, random K/V for n tokens in pages of P.
struct SmallCache {
    PagedKvCache cache;
    Sequence seq;
    int n, d;
    std::vector<float> k, v;  // [n][D]

    SmallCache(int n_tokens, int page_size, int head_dim, uint32_t seed)
        : cache(KvCacheShape{1, 1, head_dim, page_size, (n_tokens + page_size - 1) / page_size + 2}),
          n(n_tokens),
          d(head_dim) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        k.resize(static_cast<size_t>(n) * d);
        v.resize(static_cast<size_t>(n) * d);
        for (float& x : k) x = nd(rng);
        for (float& x : v) x = nd(rng);
        cache.reserve(seq, n);
        for (int t = 0; t < n; ++t)
            cache.append(0, seq, t, &k[static_cast<size_t>(t) * d], &v[static_cast<size_t>(t) * d]);
        seq.n_tokens = n;
    }

    // softmax(scale q.k_t) . v_t over the tokens in spans, in double. q: [D].
    std::vector<double> brute(const float* q, const std::vector<TokenSpan>& spans, float scale) const {
        std::vector<double> s, out(static_cast<size_t>(d), 0.0);
        std::vector<int> ts;
        for (const TokenSpan& sp : spans) {
            for (int t = sp.begin; t < sp.end; ++t) ts.push_back(t);
        }
        double m = -INFINITY;
        for (int t : ts) {
            double dot = 0;
            for (int i = 0; i < d; ++i) dot += double(q[i]) * k[static_cast<size_t>(t) * d + i];
            s.push_back(dot * scale);
            m = std::max(m, s.back());
        }
        double z = 0;
        for (size_t j = 0; j < ts.size(); ++j) {
            const double p = std::exp(s[j] - m);
            z += p;
            for (int i = 0; i < d; ++i)
                out[static_cast<size_t>(i)] += p * v[static_cast<size_t>(ts[j]) * d + i];
        }
        for (double& x : out) x /= z;
        return out;
    }
};

TEST(SpanAttention, MatchesBruteForceOverTheSelectedTokens) {
    const int n = 16 * 9 + 5, d = 32, G = 3;
    const SmallCache c(n, 16, d, 7);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(G) * d), out(static_cast<size_t>(G) * d);  // [G][D]
    for (float& x : q) x = nd(rng);
    const float scale = 1.0f / std::sqrt(float(d));
    // Spans starting and ending inside pages, one crossing a page boundary, the partial last page.
    const std::vector<TokenSpan> spans = {{0, 4}, {20, 21}, {30, 70}, {100, 112}, {140, n}};
    SpanAttention a;
    a.block_table = c.seq.pages;
    a.spans = spans;
    a.scale = scale;
    std::fill(out.begin(), out.end(), NAN);
    attend_spans(c.cache, a, q.data(), G, out.data());
    for (int g = 0; g < G; ++g) {
        const std::vector<double> want = c.brute(&q[static_cast<size_t>(g) * d], spans, scale);
        for (int i = 0; i < d; ++i)
            EXPECT_NEAR(out[static_cast<size_t>(g * d + i)], want[static_cast<size_t>(i)], 2e-5);
    }
}

TEST(SpanAttention, OneSpanOverEverythingIsBitIdenticalToThePageList) {
    const int n = 16 * 6 + 11, d = 32, G = 4;
    const SmallCache c(n, 16, d, 9);
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(G) * d), a_out(q.size()), b_out(q.size());
    for (float& x : q) x = nd(rng);
    PageListAttention pa;
    pa.pages = c.seq.pages;
    pa.last_page_tokens = n % 16;
    pa.scale = 0.17f;
    attend_pages(c.cache, pa, q.data(), G, a_out.data());
    const std::vector<TokenSpan> all = {{0, n}};
    SpanAttention sa;
    sa.block_table = c.seq.pages;
    sa.spans = all;
    sa.scale = 0.17f;
    attend_spans(c.cache, sa, q.data(), G, b_out.data());
    EXPECT_EQ(a_out, b_out);
}

TEST(AttentionRecall, IsTheFullProbabilityMassInsideTheSpans) {
    const int n = 16 * 5 + 3, d = 32;
    const SmallCache c(n, 16, d, 11);
    std::vector<float> q(static_cast<size_t>(d));
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    for (float& x : q) x = nd(rng);
    const float scale = 1.0f / std::sqrt(float(d));
    const std::vector<TokenSpan> spans = {{3, 9}, {40, 50}, {80, n}};
    std::vector<double> p(static_cast<size_t>(n));
    double z = 0, inside = 0;
    for (int t = 0; t < n; ++t) {
        double dot = 0;
        for (int i = 0; i < d; ++i)
            dot += double(q[static_cast<size_t>(i)]) * c.k[static_cast<size_t>(t) * d + i];
        p[static_cast<size_t>(t)] = std::exp(dot * scale);
        z += p[static_cast<size_t>(t)];
    }
    for (const TokenSpan& s : spans) {
        for (int t = s.begin; t < s.end; ++t) inside += p[static_cast<size_t>(t)];
    }
    EXPECT_NEAR(attention_recall(c.cache, 0, 0, c.seq.pages, n, spans, scale, q.data()), inside / z, 1e-6);
    const std::vector<TokenSpan> all = {{0, n}};
    EXPECT_DOUBLE_EQ(attention_recall(c.cache, 0, 0, c.seq.pages, n, all, scale, q.data()), 1.0);
}

// ---- whole model ----

const Model& default_model() {
    static const Model m = load_model(std::string(DSA_SOURCE_DIR) + "/models/default");
    return m;
}

// Logits [steps][V] of a prefill of `n_prompt` fixed tokens and `steps` decode steps on fixed tokens.
struct DecodeRun {
    std::vector<std::vector<float>> logits;
    std::vector<ForwardStats> stats;
};

DecodeRun run_decode(const AttentionPolicy& policy, int n_prompt, int steps, bool recall = false) {
    BackendOptions o;
    o.context = 1024;
    o.threads = 2;
    o.page_size = policy.page_size;
    o.attention = policy;
    o.collect_recall = recall;
    CpuBackend backend(default_model(), o);
    const int V = default_model().config.vocab_size;
    std::vector<int> tokens(static_cast<size_t>(n_prompt + steps));
    for (size_t i = 0; i < tokens.size(); ++i)
        tokens[i] = static_cast<int>((i * 7919 + 13) % static_cast<size_t>(V));
    Sequence seq;
    std::vector<float> logits(static_cast<size_t>(V));
    prefill(backend, seq, std::span<const int>(tokens).first(static_cast<size_t>(n_prompt)), 512, logits,
            false);
    DecodeRun r;
    for (int s = 0; s < steps; ++s) {
        backend.forward(seq, std::span<const int>(&tokens[static_cast<size_t>(n_prompt + s)], 1),
                        LogitsMode::Last, logits);
        r.logits.push_back(logits);
        r.stats.push_back(backend.last_stats());
    }
    backend.release(seq);
    return r;
}

AttentionPolicy make(PolicyKind kind, int page_size, int budget) {
    AttentionPolicy p;
    p.kind = kind;
    p.page_size = page_size;
    p.budget = budget;
    p.dense_layers = 0;
    p.gqa = GqaMode::Softmax;
    if (kind == PolicyKind::Nsa) {
        p.top_n = budget / page_size;
        p.window = 64;
    }
    if (kind == PolicyKind::Window) {
        p.sink_tokens = 4;
        p.window = budget - 4;
    }
    return p;
}

TEST(SparseDecode, BudgetCoveringTheContextIsBitIdenticalToFull) {
    const int n_prompt = 70, steps = 3;  // up to 73 tokens cached
    AttentionPolicy full;
    const DecodeRun want = run_decode(full, n_prompt, steps);
    for (PolicyKind k : {PolicyKind::Quest, PolicyKind::Nsa, PolicyKind::Window, PolicyKind::Oracle}) {
        EXPECT_EQ(run_decode(make(k, 16, 80), n_prompt, steps).logits, want.logits) << policy_kind_name(k);
    }
    AttentionPolicy per_head = make(PolicyKind::Quest, 16, 80);
    per_head.gqa = GqaMode::PerHead;
    EXPECT_EQ(run_decode(per_head, n_prompt, steps).logits, want.logits) << "per-head";
    // NSA at its preset page size; pages of 64 round full attention differently, so full runs at 64 too.
    full.page_size = 64;
    AttentionPolicy nsa64 = make(PolicyKind::Nsa, 64, 192);
    EXPECT_EQ(run_decode(nsa64, n_prompt, steps).logits, run_decode(full, n_prompt, steps).logits)
        << "nsa P=64";
}

TEST(SparseDecode, SmallBudgetChangesTheOutputAndReportsWhatItAttends) {
    const int n_prompt = 150, steps = 3;
    const size_t L = static_cast<size_t>(default_model().config.n_layers);
    AttentionPolicy full;
    const DecodeRun want = run_decode(full, n_prompt, steps, true);
    for (int step = 0; step < steps; ++step) {
        const ForwardStats& s = want.stats[static_cast<size_t>(step)];
        EXPECT_EQ(s.recall, std::vector<double>(L, 1.0));
        EXPECT_EQ(s.attended_tokens, n_prompt + step + 1);  // every cached token
        EXPECT_EQ(s.attended_per_layer, std::vector<double>(L, n_prompt + step + 1.0));
    }
    const DecodeRun got = run_decode(make(PolicyKind::Quest, 16, 64), n_prompt, steps, true);
    EXPECT_NE(got.logits, want.logits);
    for (int step = 0; step < steps; ++step) {
        const ForwardStats& s = got.stats[static_cast<size_t>(step)];
        // Every layer sparse: 3 chosen pages of 16 + the current page's tokens.
        const int n_tokens = n_prompt + step + 1;
        EXPECT_DOUBLE_EQ(s.attended_tokens, 48.0 + (n_tokens - 1) % 16 + 1);
        EXPECT_EQ(s.attended_per_layer, std::vector<double>(L, 48.0 + (n_tokens - 1) % 16 + 1));
        ASSERT_EQ(s.recall.size(), L);
        for (double r : s.recall) {
            EXPECT_GT(r, 0.0);
            EXPECT_LT(r, 1.0);
        }
    }
}

TEST(CpuBackendSequences, ACopyDecodesExactlyLikeTheOriginal) {
    const int V = default_model().config.vocab_size;
    BackendOptions o;
    o.context = 256;
    o.threads = 2;
    // Quest reads the page metadata, so a copy that lost kmin/kmax would select other pages.
    o.attention = make(PolicyKind::Quest, 16, 32);
    CpuBackend backend(default_model(), o);
    std::vector<int> tokens(40);
    for (size_t i = 0; i < tokens.size(); ++i)
        tokens[i] = static_cast<int>((i * 31 + 5) % static_cast<size_t>(V));
    Sequence original, copy;
    std::vector<float> logits(static_cast<size_t>(V)), a(logits.size()), b(logits.size());  // [V]
    prefill(backend, original, std::span<const int>(tokens).first(37), 16, logits, false);  // a partial page
    backend.copy_sequence(original, copy);
    EXPECT_EQ(copy.n_tokens, 37);
    EXPECT_NE(copy.pages, original.pages);
    for (size_t i = 37; i < tokens.size(); ++i) {
        backend.forward(original, std::span<const int>(&tokens[i], 1), LogitsMode::Last, a);
        backend.forward(copy, std::span<const int>(&tokens[i], 1), LogitsMode::Last, b);
        EXPECT_EQ(a, b) << i;
        EXPECT_LT(backend.last_stats().attended_tokens, static_cast<double>(i + 1));  // really sparse
    }
    backend.release(original);
    backend.release(copy);
}

TEST(CpuBackendSequences, SetAttentionChecksThePolicy) {
    BackendOptions o;
    o.context = 64;
    o.threads = 1;
    CpuBackend backend(default_model(), o);
    try {
        backend.set_attention(make(PolicyKind::Quest, 32, 64), false);
        ADD_FAILURE() << "a page size other than the cache's was accepted";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "attention policy page size 32 differs from the KV cache's 16");
    }
    AttentionPolicy full;
    full.page_size = 64;  // full attention follows the cache's page size
    EXPECT_NO_THROW(backend.set_attention(full, true));
}

}  // namespace
}  // namespace dsa
