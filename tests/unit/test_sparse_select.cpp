// Selection of the sparse policies (src/attention/selection.h) against brute-force references and
// hand-built cases whose right answer is known.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "attention/selection.h"
#include "util/error.h"

namespace dsa {
namespace {

// A sequence's keys for one (layer, KV head) with brute-force page metadata.
struct Pages {
    int page_size = 16, head_dim = 0, n_tokens = 0;
    std::vector<float> keys;              // [n_pages][P][D]
    std::vector<float> kmin, kmax, ksum;  // [n_pages][D]
    std::vector<PageMeta> meta;           // [n_pages]
    std::vector<const float*> key_ptrs;   // [n_pages] -> [P][D]

    int n_pages() const { return (n_tokens + page_size - 1) / page_size; }
    float* key(int t) { return keys.data() + static_cast<size_t>(t) * head_dim; }

    // Recomputes the metadata from the keys (after a test planted some).
    void finish() {
        const size_t np = static_cast<size_t>(n_pages()), d = static_cast<size_t>(head_dim);
        kmin.assign(np * d, 0.0f);
        kmax.assign(np * d, 0.0f);
        ksum.assign(np * d, 0.0f);
        meta.clear();
        key_ptrs.clear();
        for (size_t j = 0; j < np; ++j) {
            const int first = static_cast<int>(j) * page_size;
            const int count = std::min(page_size, n_tokens - first);
            for (size_t i = 0; i < d; ++i) {
                float lo = INFINITY, hi = -INFINITY, s = 0.0f;
                for (int t = first; t < first + count; ++t) {
                    const float v = key(t)[i];
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                    s += v;
                }
                kmin[j * d + i] = lo;
                kmax[j * d + i] = hi;
                ksum[j * d + i] = s;
            }
            meta.push_back({&kmin[j * d], &kmax[j * d], &ksum[j * d], count});
            key_ptrs.push_back(keys.data() + j * static_cast<size_t>(page_size) * d);
        }
    }
};

Pages random_pages(int n_tokens, int page_size, int head_dim, std::mt19937& rng, float scale = 1.0f) {
    Pages p;
    p.page_size = page_size;
    p.head_dim = head_dim;
    p.n_tokens = n_tokens;
    std::normal_distribution<float> nd(0.0f, scale);
    p.keys.resize(static_cast<size_t>(p.n_pages()) * page_size * head_dim);
    for (float& v : p.keys) v = nd(rng);
    p.finish();
    return p;
}

std::vector<float> random_q(int group, int head_dim, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(group) * head_dim);  // [G][D]
    for (float& v : q) v = nd(rng);
    return q;
}

SelectInput input_of(const Pages& p, const std::vector<float>& q, int group) {
    SelectInput in;
    in.q = q.data();
    in.group_size = group;
    in.head_dim = p.head_dim;
    in.page_size = p.page_size;
    in.n_tokens = p.n_tokens;
    in.meta = p.meta;
    in.keys = p.key_ptrs;
    return in;
}

AttentionPolicy quest(int budget, int page_size = 16, GqaMode gqa = GqaMode::Sum) {
    AttentionPolicy pol;
    pol.kind = PolicyKind::Quest;
    pol.page_size = page_size;
    pol.budget = budget;
    pol.gqa = gqa;
    pol.dense_layers = 0;
    return pol;
}

AttentionPolicy nsa(int top_n, int window, int page_size = 16) {
    AttentionPolicy pol;
    pol.kind = PolicyKind::Nsa;
    pol.page_size = page_size;
    pol.top_n = top_n;
    pol.window = window;
    pol.gqa = GqaMode::Softmax;
    pol.dense_layers = 0;
    return pol;
}

AttentionPolicy oracle(int budget, GqaMode gqa = GqaMode::Softmax) {
    AttentionPolicy pol;
    pol.kind = PolicyKind::Oracle;
    pol.budget = budget;
    pol.gqa = gqa;
    pol.dense_layers = 0;
    return pol;
}

// The set of tokens the spans cover, checking they are ascending, disjoint and non-adjacent.
std::set<int> token_set(const HeadSelection& h) {
    std::set<int> s;
    for (size_t i = 0; i < h.spans.size(); ++i) {
        EXPECT_LT(h.spans[i].begin, h.spans[i].end);
        if (i > 0) {
            EXPECT_LT(h.spans[i - 1].end, h.spans[i].begin);
        }
        for (int t = h.spans[i].begin; t < h.spans[i].end; ++t) s.insert(t);
    }
    EXPECT_EQ(static_cast<int>(s.size()), h.tokens());
    return s;
}

TEST(QuestBound, IsAtLeastTheTrueMaxDotInEveryPage) {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 20; ++trial) {
        const int d = trial % 2 == 0 ? 32 : 128;
        const int n = 1 + static_cast<int>(rng() % 300);  // partial last pages included
        const Pages p = random_pages(n, 16, d, rng, trial % 3 == 0 ? 5.0f : 1.0f);
        const std::vector<float> q = random_q(1, d, rng);
        std::vector<float> bound(static_cast<size_t>(p.n_pages()));
        quest_bounds(q.data(), d, p.meta, bound);
        for (int j = 0; j < p.n_pages(); ++j) {
            float best = -INFINITY;
            for (int t = j * 16; t < std::min(n, (j + 1) * 16); ++t) {
                float s = 0.0f;
                for (int i = 0; i < d; ++i) s += q[i] * p.keys[static_cast<size_t>(t) * d + i];
                best = std::max(best, s);
            }
            // fp32 sums in different orders: allow rounding of the size of the terms.
            EXPECT_GE(bound[static_cast<size_t>(j)], best - 1e-4f * (1.0f + std::fabs(best))) << "page " << j;
        }
    }
}

TEST(TopK, PicksLargestWithTiesToLowerIndexAscending) {
    const std::vector<float> s = {1, 3, 3, 0, 3, 2};
    EXPECT_EQ(top_k_indices(s, 2), (std::vector<int>{1, 2}));
    EXPECT_EQ(top_k_indices(s, 4), (std::vector<int>{1, 2, 4, 5}));
    EXPECT_EQ(top_k_indices(s, 10), (std::vector<int>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(top_k_indices(s, 0), (std::vector<int>{}));
    const std::vector<uint8_t> eligible = {1, 0, 1, 1, 1, 1};
    EXPECT_EQ(top_k_indices(s, 2, eligible), (std::vector<int>{2, 4}));
    const std::vector<float> equal(9, 0.5f);
    EXPECT_EQ(top_k_indices(equal, 3), (std::vector<int>{0, 1, 2}));
}

TEST(GroupReduce, MatchesTheFormulas) {
    // [G=2][n=3]
    const std::vector<float> s = {1.0f, 4.0f, -2.0f, 3.0f, 0.0f, 1.0f};
    EXPECT_EQ(reduce_group_scores(s, 2, GqaMode::Sum, 1.0f), (std::vector<float>{4.0f, 4.0f, -1.0f}));
    EXPECT_EQ(reduce_group_scores(s, 2, GqaMode::Max, 1.0f), (std::vector<float>{3.0f, 4.0f, 1.0f}));
    const float scale = 0.5f;
    const std::vector<float> soft = reduce_group_scores(s, 2, GqaMode::Softmax, scale);
    for (int j = 0; j < 3; ++j) {
        double want = 0;
        for (int h = 0; h < 2; ++h) {
            double z = 0;
            for (int k = 0; k < 3; ++k) z += std::exp(scale * s[static_cast<size_t>(h * 3 + k)]);
            want += std::exp(scale * s[static_cast<size_t>(h * 3 + j)]) / z;
        }
        EXPECT_NEAR(soft[static_cast<size_t>(j)], want, 1e-6);
    }
}

TEST(Spans, MergeOverlapsAndClip) {
    const std::vector<int> pages = {0, 2, 3, 6};
    const std::vector<TokenSpan> ranges = {{40, 58}, {90, 200}};
    const std::vector<TokenSpan> want = {{0, 16}, {32, 64}, {90, 100}};
    EXPECT_EQ(spans_of(pages, 16, 100, std::vector<TokenSpan>{{90, 200}}), want);
    const std::vector<TokenSpan> want2 = {{0, 16}, {32, 64}, {90, 100}};
    EXPECT_EQ(spans_of(pages, 16, 100, ranges), want2);  // [40, 58) lies inside pages 2-3
    EXPECT_TRUE(covers_all(spans_of(std::vector<int>{0, 1}, 16, 20), 20));
    EXPECT_FALSE(covers_all(spans_of(std::vector<int>{1}, 16, 20), 20));
}

// Plants, in page `page`, a key that matches q strongly (the other keys are small noise).
void plant(Pages& p, int token, const float* q, float strength) {
    for (int i = 0; i < p.head_dim; ++i) p.key(token)[i] = strength * q[i];
}

TEST(PlantedKey, QuestNsaAndOraclePickTheRightPage) {
    std::mt19937 rng(5);
    const int d = 64, n = 16 * 40 + 7;  // 41 pages, the last partial
    Pages p = random_pages(n, 16, d, rng, 0.1f);
    const std::vector<float> q = random_q(4, d, rng);
    // Every head of the group agrees with head 0 roughly: average direction.
    std::vector<float> qmean(static_cast<size_t>(d), 0.0f);
    for (int h = 0; h < 4; ++h) {
        for (int i = 0; i < d; ++i) qmean[static_cast<size_t>(i)] += q[static_cast<size_t>(h * d + i)] / 4.0f;
    }
    const int planted_page = 17, planted_token = planted_page * 16 + 5;
    plant(p, planted_token, qmean.data(), 3.0f);
    p.finish();
    const SelectInput in = input_of(p, q, 4);

    for (GqaMode g : {GqaMode::Sum, GqaMode::Max, GqaMode::Softmax}) {
        const GroupSelection qs = select_tokens(quest(32, 16, g), 5, in);  // 2 pages: planted + current
        ASSERT_FALSE(qs.dense);
        ASSERT_EQ(qs.heads.size(), 1u);
        EXPECT_EQ(qs.heads[0].pages, (std::vector<int>{planted_page, 40})) << gqa_mode_name(g);
    }
    AttentionPolicy np = nsa(1, 0);
    np.init_blocks = 0;
    np.local_blocks = 0;
    const GroupSelection ns = select_tokens(np, 5, in);
    ASSERT_FALSE(ns.dense);
    EXPECT_EQ(ns.heads[0].pages, (std::vector<int>{planted_page, 40}));

    const GroupSelection os = select_tokens(oracle(16), 5, in);
    ASSERT_FALSE(os.dense);
    EXPECT_TRUE(token_set(os.heads[0]).count(planted_token));
}

TEST(QuestSelect, TiesGoToTheLowerPage) {
    std::mt19937 rng(3);
    Pages p = random_pages(16 * 10, 16, 32, rng);
    // Every page holds the same keys: every bound ties.
    for (int t = 16; t < p.n_tokens; ++t) std::copy(p.key(t % 16), p.key(t % 16) + 32, p.key(t));
    p.finish();
    const std::vector<float> q = random_q(2, 32, rng);
    const GroupSelection s = select_tokens(quest(64), 2, input_of(p, q, 2));
    EXPECT_EQ(s.heads[0].pages, (std::vector<int>{0, 1, 2, 9}));
}

TEST(QuestSelect, SinkAndRecentPagesAreAlwaysTaken) {
    std::mt19937 rng(8);
    const Pages p = random_pages(16 * 30 + 3, 16, 32, rng);
    const std::vector<float> q = random_q(4, 32, rng);
    AttentionPolicy pol = quest(16 * 6);
    pol.sink_pages = 1;
    pol.recent_pages = 2;
    const GroupSelection s = select_tokens(pol, 2, input_of(p, q, 4));
    const std::vector<int>& pages = s.heads[0].pages;
    ASSERT_EQ(pages.size(), 6u);
    for (int must : {0, 28, 29, 30}) EXPECT_TRUE(std::count(pages.begin(), pages.end(), must)) << must;
}

TEST(QuestSelect, SoftmaxReductionKeepsOneHeadFromDominating) {
    // 3 complete pages + the current one; head 0 scores page 0 hugely, heads 1-3 all prefer page 1.
    const int d = 4;
    Pages p;
    p.page_size = 16;
    p.head_dim = d;
    p.n_tokens = 16 * 3 + 1;
    p.keys.assign(static_cast<size_t>(4 * 16 * d), 0.0f);
    for (int t = 0; t < 16; ++t) p.key(t)[0] = 100.0f;  // page 0: large along dim 0
    for (int t = 16; t < 32; ++t) p.key(t)[1] = 10.0f;  // page 1: moderate along dim 1
    p.finish();
    std::vector<float> q(static_cast<size_t>(4 * d), 0.0f);  // [G=4][D]
    q[0] = 1.0f;                                             // head 0 looks along dim 0
    for (int h = 1; h < 4; ++h) q[static_cast<size_t>(h * d + 1)] = 1.0f;
    const SelectInput in = input_of(p, q, 4);
    EXPECT_EQ(select_tokens(quest(32, 16, GqaMode::Sum), 2, in).heads[0].pages, (std::vector<int>{0, 3}));
    EXPECT_EQ(select_tokens(quest(32, 16, GqaMode::Max), 2, in).heads[0].pages, (std::vector<int>{0, 3}));
    EXPECT_EQ(select_tokens(quest(32, 16, GqaMode::Softmax), 2, in).heads[0].pages, (std::vector<int>{1, 3}));
}

TEST(PerHead, HeadsOfOneGroupPickDifferentPages) {
    std::mt19937 rng(21);
    const int d = 32;
    Pages p = random_pages(16 * 20, 16, d, rng, 0.1f);
    const std::vector<float> q = random_q(4, d, rng);
    for (int h = 0; h < 4; ++h) plant(p, (3 + 4 * h) * 16 + 2, &q[static_cast<size_t>(h * d)], 3.0f);
    p.finish();
    const SelectInput in = input_of(p, q, 4);
    const GroupSelection qs = select_tokens(quest(32, 16, GqaMode::PerHead), 2, in);
    ASSERT_EQ(qs.heads.size(), 4u);
    for (int h = 0; h < 4; ++h)
        EXPECT_EQ(qs.heads[h].pages, (std::vector<int>{3 + 4 * h, 19})) << "head " << h;
    AttentionPolicy np = nsa(1, 0);
    np.init_blocks = np.local_blocks = 0;
    np.gqa = GqaMode::PerHead;
    const GroupSelection ns = select_tokens(np, 2, in);
    ASSERT_EQ(ns.heads.size(), 4u);
    for (int h = 0; h < 4; ++h)
        EXPECT_EQ(ns.heads[h].pages, (std::vector<int>{3 + 4 * h, 19})) << "head " << h;
    EXPECT_EQ(select_tokens(quest(32), 2, in).heads.size(), 1u);
}

TEST(NsaSelect, AlwaysIncludesInitLocalCurrentAndWindow) {
    std::mt19937 rng(4);
    for (int trial = 0; trial < 10; ++trial) {
        const int n = 64 * 30 + static_cast<int>(rng() % 64) + 1;  // 31 pages of 64, the last partial
        const Pages p = random_pages(n, 64, 32, rng);
        const std::vector<float> q = random_q(4, 32, rng);
        AttentionPolicy pol = nsa(8, 100, 64);
        const GroupSelection s = select_tokens(pol, 3, input_of(p, q, 4));
        ASSERT_FALSE(s.dense);
        const HeadSelection& h = s.heads[0];
        ASSERT_EQ(h.pages.size(), 9u);  // top_n complete pages + the current one
        for (int must : {0, 28, 29, 30})
            EXPECT_TRUE(std::count(h.pages.begin(), h.pages.end(), must)) << must;
        // The union, each token once: selected pages and the last 100 tokens.
        std::set<int> want;
        for (int j : h.pages) {
            for (int t = j * 64; t < std::min(n, (j + 1) * 64); ++t) want.insert(t);
        }
        for (int t = n - 100; t < n; ++t) want.insert(t);
        EXPECT_EQ(token_set(h), want);
    }
}

TEST(NsaSelect, PicksTheTopMeanKeyPagesByGroupSoftmax) {
    std::mt19937 rng(9);
    const Pages p = random_pages(16 * 25, 16, 32, rng);
    const std::vector<float> q = random_q(4, 32, rng);
    const GroupSelection s = select_tokens(nsa(6, 0), 2, input_of(p, q, 4));
    // Brute force: importance = sum_h softmax_j(q_h . mean_j / sqrt(D)) over the 24 complete pages.
    std::vector<double> imp(24, 0.0);
    for (int h = 0; h < 4; ++h) {
        std::vector<double> z(24);
        for (int j = 0; j < 24; ++j) {
            double dot = 0;
            for (int i = 0; i < 32; ++i) {
                double mean = 0;
                for (int t = j * 16; t < j * 16 + 16; ++t) mean += p.keys[static_cast<size_t>(t) * 32 + i];
                dot += q[static_cast<size_t>(h * 32 + i)] * mean / 16;
            }
            z[static_cast<size_t>(j)] = dot / std::sqrt(32.0);
        }
        const double m = *std::max_element(z.begin(), z.end());
        double sum = 0;
        for (double& v : z) sum += (v = std::exp(v - m));
        for (int j = 0; j < 24; ++j) imp[static_cast<size_t>(j)] += z[static_cast<size_t>(j)] / sum;
    }
    std::vector<int> order(21);
    std::iota(order.begin(), order.end(), 1);  // pages 1..21 compete (0 = init, 22-23 = local)
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return imp[static_cast<size_t>(a)] > imp[static_cast<size_t>(b)]; });
    std::vector<int> want = {0, 22, 23, 24, order[0], order[1], order[2]};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(s.heads[0].pages, want);
}

TEST(OracleSelect, IsExactlyTheTrueTopB) {
    std::mt19937 rng(13);
    for (GqaMode g : {GqaMode::Softmax, GqaMode::Sum, GqaMode::PerHead}) {
        const int n = 16 * 20 + 9, d = 32, group = 4, budget = 48;
        const Pages p = random_pages(n, 16, d, rng);
        const std::vector<float> q = random_q(group, d, rng);
        const GroupSelection s = select_tokens(oracle(budget, g), 2, input_of(p, q, group));
        ASSERT_FALSE(s.dense);
        ASSERT_EQ(s.heads.size(), g == GqaMode::PerHead ? 4u : 1u);
        for (int sh = 0; sh < static_cast<int>(s.heads.size()); ++sh) {
            std::vector<double> score(static_cast<size_t>(n), 0.0);
            for (int h = 0; h < group; ++h) {
                if (g == GqaMode::PerHead && h != sh) continue;
                std::vector<double> z(static_cast<size_t>(n));
                for (int t = 0; t < n; ++t) {
                    double dot = 0;
                    for (int i = 0; i < d; ++i)
                        dot += q[static_cast<size_t>(h * d + i)] * p.keys[static_cast<size_t>(t) * d + i];
                    z[static_cast<size_t>(t)] = dot / std::sqrt(double(d));
                }
                if (g == GqaMode::Softmax) {
                    const double m = *std::max_element(z.begin(), z.end());
                    double sum = 0;
                    for (double& v : z) sum += (v = std::exp(v - m));
                    for (double& v : z) v /= sum;
                }
                for (int t = 0; t < n; ++t) score[static_cast<size_t>(t)] += z[static_cast<size_t>(t)];
            }
            std::vector<int> order(static_cast<size_t>(n));
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](int a, int b) {
                return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
            });
            const std::set<int> want(order.begin(), order.begin() + budget);
            EXPECT_EQ(token_set(s.heads[static_cast<size_t>(sh)]), want)
                << gqa_mode_name(g) << " head " << sh;
        }
    }
}

TEST(WindowSelect, SinksPlusRecentTokens) {
    std::mt19937 rng(1);
    const Pages p = random_pages(500, 16, 32, rng);
    const std::vector<float> q = random_q(2, 32, rng);
    AttentionPolicy pol;
    pol.kind = PolicyKind::Window;
    pol.sink_tokens = 4;
    pol.window = 100;
    pol.dense_layers = 0;
    const GroupSelection s = select_tokens(pol, 0, input_of(p, q, 2));
    ASSERT_FALSE(s.dense);
    EXPECT_EQ(s.heads[0].spans, (std::vector<TokenSpan>{{0, 4}, {400, 500}}));
    EXPECT_EQ(s.heads[0].tokens(), 104);
}

TEST(Dense, DenseLayersFullPolicyAndBudgetCoveringTheContext) {
    std::mt19937 rng(2);
    const Pages p = random_pages(16 * 8 + 5, 16, 32, rng);  // 133 tokens, 9 pages
    const std::vector<float> q = random_q(4, 32, rng);
    const SelectInput in = input_of(p, q, 4);
    const auto is_dense = [&](const AttentionPolicy& pol, int layer) {
        const GroupSelection s = select_tokens(pol, layer, in);
        return s.dense && s.heads.size() == 1 && s.heads[0].spans == std::vector<TokenSpan>{{0, 133}};
    };
    AttentionPolicy q2 = quest(32);
    q2.dense_layers = 2;
    EXPECT_TRUE(is_dense(q2, 0));
    EXPECT_TRUE(is_dense(q2, 1));
    EXPECT_FALSE(is_dense(q2, 2));
    EXPECT_TRUE(is_dense(AttentionPolicy{}, 3));  // full
    EXPECT_TRUE(is_dense(quest(144), 3));         // 9 pages of budget for 9 pages
    EXPECT_FALSE(is_dense(quest(128), 3));
    EXPECT_FALSE(is_dense(quest(128, 16, GqaMode::PerHead), 3));
    EXPECT_TRUE(is_dense(nsa(8, 0), 3));  // all 8 complete pages fit top_n
    EXPECT_FALSE(is_dense(nsa(7, 0), 3));
    EXPECT_TRUE(is_dense(nsa(3, 133), 3));  // the window covers everything
    EXPECT_TRUE(is_dense(oracle(144), 3));
    EXPECT_FALSE(is_dense(oracle(128), 3));
    AttentionPolicy w;
    w.kind = PolicyKind::Window;
    w.sink_tokens = 4;
    w.window = 129;
    w.dense_layers = 0;
    EXPECT_TRUE(is_dense(w, 3));
    w.window = 128;
    EXPECT_FALSE(is_dense(w, 3));
}

TEST(SelectTokens, RejectsInconsistentInput) {
    std::mt19937 rng(2);
    const Pages p = random_pages(40, 16, 32, rng);
    const std::vector<float> q = random_q(1, 32, rng);
    SelectInput in = input_of(p, q, 1);
    in.n_tokens = 60;  // 4 pages, 3 metadata entries
    EXPECT_THROW(select_tokens(quest(32), 3, in), Error);
    in = input_of(p, q, 1);
    EXPECT_THROW(select_tokens(quest(64, 32), 3, in), Error);  // the policy's page size is 32, the cache's 16
}

}  // namespace
}  // namespace dsa
