// DepthCache's claim: a cache brought back to depth D (page-aligned truncation + re-prefill of the rest)
// continues exactly like a fresh sequence prefilled to D, for full and sparse attention, on the CPU
// reference backend. The reference is a fresh backend and sequence, never rewound.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bench/depth_cache.h"
#include "engine/generator.h"
#include "model/random_weights.h"

namespace dsa {
namespace {

const Model& tiny_model() {
    static const Model m = make_random_model(std::string(DSA_TEST_DATA) + "/shapes/tiny-llama.json", 7);
    return m;
}

std::unique_ptr<Backend> cpu_backend(const AttentionPolicy& policy) {
    BackendOptions opts;
    opts.context = 256;
    opts.threads = 1;
    opts.page_size = policy.page_size;
    opts.attention = policy;
    return make_backend("cpu", tiny_model(), opts);
}

AttentionPolicy quest_policy() {
    AttentionPolicy p;
    p.kind = PolicyKind::Quest;
    p.page_size = 16;
    p.dense_layers = 2;
    p.budget = 32;
    return p;
}

// Logits of `steps` decode steps of ids[depth ..] from the cache's current state.
std::vector<float> decode(Backend& b, Sequence& seq, std::span<const int> ids, int depth, int steps) {
    std::vector<float> out;
    std::vector<float> logits(static_cast<size_t>(tiny_model().config.vocab_size));
    for (int i = 0; i < steps; ++i) {
        b.forward(seq, ids.subspan(static_cast<size_t>(depth + i), 1), LogitsMode::Last, logits);
        out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
}

// Reference: a fresh sequence prefilled to `depth` in one pass, then 8 decode steps.
std::vector<float> fresh_decode(const AttentionPolicy& policy, const std::vector<int>& ids, int depth) {
    const std::unique_ptr<Backend> backend = cpu_backend(policy);
    Sequence seq;
    std::vector<float> logits(static_cast<size_t>(tiny_model().config.vocab_size));
    prefill(*backend, seq, std::span<const int>(ids).first(static_cast<size_t>(depth)), 512, logits, false);
    return decode(*backend, seq, ids, depth, 8);
}

void expect_same_logits(const std::vector<float>& got, const std::vector<float>& expected) {
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i]))) << "logit " << i;
    }
}

const std::vector<int>& stream() {
    static const std::vector<int> ids = random_token_ids(200, tiny_model().config.vocab_size, 3);
    return ids;
}

void expect_rewind_exact(const AttentionPolicy& policy, int depth) {
    const std::unique_ptr<Backend> backend = cpu_backend(policy);
    DepthCache cache(*backend, stream(), policy.page_size, 24);
    EXPECT_EQ(cache.set_depth(depth + 40).tokens, depth + 40);  // past the depth, so that it must come back
    const DepthCache::Fill back = cache.set_depth(depth);
    EXPECT_EQ(back.tokens, depth % policy.page_size);  // only the partial page is re-prefilled
    EXPECT_EQ(cache.seq().n_tokens, depth);
    expect_same_logits(decode(*backend, cache.seq(), stream(), depth, 8),
                       fresh_decode(policy, stream(), depth));
}

TEST(BenchDepthCache, RewindToAPageBoundaryIsExact) {
    expect_rewind_exact(AttentionPolicy{}, 96);
}

TEST(BenchDepthCache, RewindIntoAPartialPageIsExact) {
    expect_rewind_exact(AttentionPolicy{}, 101);
}

TEST(BenchDepthCache, RewindKeepsQuestSelectionExact) {
    // The re-prefilled partial page's metadata must hold its own keys only, or Quest would select other
    // pages.
    expect_rewind_exact(quest_policy(), 101);
}

TEST(BenchDepthCache, DecodedTokensAreNotKept) {
    // Quest decode steps at 64+ tokens select 2 of 5 pages in layers 2-3, so the K/V they append differ
    // from a prompt's: going up after them must prefill from the last page this cache prefilled.
    const AttentionPolicy policy = quest_policy();
    const std::unique_ptr<Backend> backend = cpu_backend(policy);
    DepthCache cache(*backend, stream(), policy.page_size, 24);
    cache.set_depth(64);
    decode(*backend, cache.seq(), stream(), 64, 8);
    EXPECT_EQ(cache.set_depth(101).tokens, 101 - 64);
    expect_same_logits(decode(*backend, cache.seq(), stream(), 101, 8), fresh_decode(policy, stream(), 101));
}

TEST(BenchDepthCache, NoSingleTokenFill) {
    // 96 -> 97 would be a 1-token forward(), i.e. a sparse decode step: the last page is prefilled again.
    const AttentionPolicy policy = quest_policy();
    const std::unique_ptr<Backend> backend = cpu_backend(policy);
    DepthCache cache(*backend, stream(), policy.page_size, 24);
    cache.set_depth(96);
    EXPECT_EQ(cache.set_depth(97).tokens, 97 - 80);
    expect_same_logits(decode(*backend, cache.seq(), stream(), 97, 8), fresh_decode(policy, stream(), 97));
}

TEST(BenchDepthCache, TokenStreamIsSeeded) {
    EXPECT_EQ(random_token_ids(50, 384, 1), random_token_ids(50, 384, 1));
    EXPECT_NE(random_token_ids(50, 384, 1), random_token_ids(50, 384, 2));
    for (const int id : random_token_ids(1000, 384, 1)) {
        EXPECT_GE(id, 0);
        EXPECT_LT(id, 384);
    }
}

}  // namespace
}  // namespace dsa
