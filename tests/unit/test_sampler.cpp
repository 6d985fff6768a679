// Sampler: greedy is argmax, the truncations never emit excluded tokens, temperature sampling follows the
// softmax (chi-square at p = 0.001), seeds reproduce, and the repetition penalty acts as CTRL defines it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "sampler/sampler.h"

namespace dsa {
namespace {

SamplerParams plain(float temperature, uint64_t seed = 1) {
    SamplerParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
    const double mx = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - mx) / temperature);
    for (double& x : p) x /= sum;
    return p;
}

std::vector<int> counts_of(Sampler& s, const std::vector<float>& logits, int draws) {
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(s.sample(logits, {}))];
    return counts;
}

// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int draws) {
    double chi2 = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        const double e = p[i] * draws;
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi2;
}

// Upper 0.1% points of the chi-square distribution (degrees of freedom 7 and 3).
constexpr double kChi2Df7P001 = 24.322;
constexpr double kChi2Df3P001 = 16.266;

const std::vector<float> kLogits8 = {1.0f, 2.5f, -0.5f, 0.0f, 3.0f, 1.7f, -2.0f, 2.9f};

TEST(Sampler, GreedyIsArgmax) {
    Sampler s(plain(0.0f));
    EXPECT_EQ(s.sample(kLogits8, {}), 4);
    const std::vector<float> neg = {-5.0f, -1.0f, -3.0f};
    EXPECT_EQ(s.sample(neg, {}), 1);
}

TEST(Sampler, GreedyTiesGoToTheLowerId) {
    Sampler s(plain(-1.0f));
    const std::vector<float> tie = {0.0f, 7.0f, 3.0f, 7.0f, 7.0f};
    for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(tie, {}), 1);
}

TEST(Sampler, GreedyAppliesThePenaltyFirst) {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 2.0f;
    Sampler s(p);
    // 3.0 / 2 = 1.5 < 2.9: the repeated argmax loses to the next best.
    const std::vector<int> history = {4};
    EXPECT_EQ(s.sample(kLogits8, history), 7);
}

TEST(Sampler, TemperatureSamplingFollowsTheSoftmax) {
    constexpr int kDraws = 20000;
    for (float t : {1.0f, 0.7f, 1.5f}) {
        Sampler s(plain(t, 1234));
        const std::vector<int> counts = counts_of(s, kLogits8, kDraws);
        const double chi2 = chi_square(counts, softmax(kLogits8, t), kDraws);
        EXPECT_LT(chi2, kChi2Df7P001) << "temperature " << t;
    }
}

TEST(Sampler, ChiSquareDetectsAWrongDistribution) {
    // The test above can fail: the same draws against the softmax at the wrong temperature are rejected.
    constexpr int kDraws = 20000;
    Sampler s(plain(1.0f, 1234));
    const std::vector<int> counts = counts_of(s, kLogits8, kDraws);
    EXPECT_GT(chi_square(counts, softmax(kLogits8, 1.2), kDraws), kChi2Df7P001);
}

TEST(Sampler, TopKNeverEmitsExcludedTokensAndRenormalises) {
    SamplerParams p = plain(1.0f, 7);
    p.top_k = 3;  // keeps ids 4 (3.0), 7 (2.9), 1 (2.5)
    Sampler s(p);
    constexpr int kDraws = 20000;
    const std::vector<int> counts = counts_of(s, kLogits8, kDraws);
    for (int id : {0, 2, 3, 5, 6}) EXPECT_EQ(counts[static_cast<size_t>(id)], 0) << id;
    const std::vector<double> kept = softmax({3.0f, 2.9f, 2.5f}, 1.0);
    const double chi2 = chi_square({counts[4], counts[7], counts[1]}, kept, kDraws);
    EXPECT_LT(chi2, 13.816);  // chi-square df 2, p = 0.001
}

TEST(Sampler, TopKTiesKeepTheLowerIds) {
    SamplerParams p = plain(1.0f, 3);
    p.top_k = 2;
    Sampler s(p);
    const std::vector<float> tie = {1.0f, 1.0f, 1.0f, 1.0f};
    std::set<int> seen;
    for (int i = 0; i < 200; ++i) seen.insert(s.sample(tie, {}));
    EXPECT_EQ(seen, (std::set<int>{0, 1}));
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
    // Probabilities at temperature 1: 0.5, 0.25, 0.125, 0.0625, 0.0625 (logits are log2 steps).
    const std::vector<float> logits = {std::log(8.0f), std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
    SamplerParams p = plain(1.0f, 11);
    p.top_p = 0.8f;  // 0.5 + 0.25 = 0.75 < 0.8, + 0.125 = 0.875 >= 0.8: keeps ids 0, 1, 2
    Sampler s(p);
    constexpr int kDraws = 20000;
    const std::vector<int> counts = counts_of(s, logits, kDraws);
    EXPECT_EQ(counts[3] + counts[4], 0);
    EXPECT_GT(counts[2], 0);
    EXPECT_LT(chi_square({counts[0], counts[1], counts[2]}, {4.0 / 7, 2.0 / 7, 1.0 / 7}, kDraws), 13.816);
}

TEST(Sampler, TopPAlwaysKeepsOneToken) {
    SamplerParams p = plain(1.0f, 5);
    p.top_p = 0.01f;
    Sampler s(p);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(kLogits8, {}), 4);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMax) {
    SamplerParams p = plain(1.0f, 13);
    p.min_p = 0.5f;  // keep p_i >= 0.5 p_max  <=>  logit_i >= 3.0 - ln 2 = 2.307: ids 4, 7, 1
    Sampler s(p);
    constexpr int kDraws = 20000;
    const std::vector<int> counts = counts_of(s, kLogits8, kDraws);
    for (int id : {0, 2, 3, 5, 6}) EXPECT_EQ(counts[static_cast<size_t>(id)], 0) << id;
    EXPECT_GT(counts[1], 0);
}

TEST(Sampler, TruncationsUseProbabilitiesBeforeTemperature) {
    // llama.cpp order: min-p is decided at temperature 1, then the temperature flattens what is left.
    SamplerParams p = plain(100.0f, 17);
    p.min_p = 0.5f;
    Sampler s(p);
    constexpr int kDraws = 20000;
    const std::vector<int> counts = counts_of(s, kLogits8, kDraws);
    for (int id : {0, 2, 3, 5, 6}) EXPECT_EQ(counts[static_cast<size_t>(id)], 0) << id;
    const std::vector<double> kept = softmax({3.0f, 2.9f, 2.5f}, 100.0);  // nearly uniform
    EXPECT_LT(chi_square({counts[4], counts[7], counts[1]}, kept, kDraws), 13.816);
}

TEST(Sampler, AllTruncationsTogether) {
    SamplerParams p;  // llama.cpp defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05
    p.seed = 99;
    std::vector<float> logits(1000);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = -0.01f * static_cast<float>(i * 7 % 1000);
    // Top-k 40 keeps logits >= -0.39 (ids with i*7 % 1000 < 40); top-p and min-p only shrink that set.
    Sampler s(p);
    for (int d = 0; d < 2000; ++d) {
        const int id = s.sample(logits, {});
        EXPECT_LT(id * 7 % 1000, 40) << id;
    }
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
    auto run = [](uint64_t seed) {
        Sampler s(plain(1.0f, seed));
        std::vector<int> out;
        for (int i = 0; i < 200; ++i) out.push_back(s.sample(kLogits8, {}));
        return out;
    };
    EXPECT_EQ(run(42), run(42));
    EXPECT_NE(run(42), run(43));
}

TEST(Sampler, DrawIsAFixedFunctionOfTheEngine) {
    // The uniform is the top 53 bits of mt19937_64 (standardised output), so the tokens do not depend on
    // the standard library. With probabilities 1/2, 1/2 the token is 0 iff the engine's top bit is 0.
    Sampler s(plain(1.0f, 5489));
    std::mt19937_64 engine(5489);
    const std::vector<float> even = {0.0f, 0.0f};
    for (int i = 0; i < 64; ++i) EXPECT_EQ(s.sample(even, {}), static_cast<int>(engine() >> 63)) << i;
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
    // Two tokens, logits 2 and -1, history {0, 1}, penalty 2: logits become 1 and -2, so P(0) = 1/(1+e^-3).
    SamplerParams p = plain(1.0f, 21);
    p.repeat_penalty = 2.0f;
    Sampler s(p);
    const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 0.0f};
    const std::vector<int> history = {0, 1, 0, 0, 1};  // repeats count once
    constexpr int kDraws = 20000;
    std::vector<int> counts(4, 0);
    for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(s.sample(logits, history))];
    const std::vector<double> expected = softmax({1.0f, -2.0f, 0.5f, 0.0f}, 1.0);
    EXPECT_LT(chi_square(counts, expected, kDraws), kChi2Df3P001);
    // Penalising each occurrence (2^3 on token 0) would be rejected.
    EXPECT_GT(chi_square(counts, softmax({0.25f, -4.0f, 0.5f, 0.0f}, 1.0), kDraws), kChi2Df3P001);
}

TEST(Sampler, RepetitionPenaltyLooksOnlyAtTheLastN) {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 10.0f;
    p.repeat_last_n = 2;
    Sampler s(p);
    const std::vector<float> logits = {5.0f, 4.0f, 3.0f};
    // Token 0 is outside the last 2 tokens: not penalised, still the argmax.
    EXPECT_EQ(s.sample(logits, std::vector<int>{0, 1, 2}), 0);
    // Inside the window it drops to 0.5 and token 1 (not in history here) wins.
    EXPECT_EQ(s.sample(logits, std::vector<int>{2, 0}), 1);
}

}  // namespace
}  // namespace dsa
