// Perplexity: per-token NLL and llama-perplexity's error formula against direct computations, the window
// split, and window scoring on the tiny Llama model against NLLs computed from HF's logits
// (tests/data/models/llama, tools/make_golden_models.py), chunked and one token per step.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "eval/flag_lists.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "util/error.h"

namespace dsa {
namespace {

namespace fs = std::filesystem;

TEST(PerplexityMath, TokenNllIsMinusLogSoftmax) {
    const std::vector<float> logits = {1.0f, 2.0f, 3.0f, -0.5f};
    const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-0.5);
    for (int t = 0; t < 4; ++t)
        EXPECT_NEAR(token_nll(logits, t), -std::log(std::exp(static_cast<double>(logits[t])) / z), 1e-12);
    // Large logits must not overflow: shifting every logit leaves the NLL unchanged.
    std::vector<float> big = logits;
    for (float& v : big) v += 1000.0f;
    EXPECT_NEAR(token_nll(big, 2), token_nll(logits, 2), 1e-9);
    EXPECT_THROW(token_nll(logits, 4), Error);
}

TEST(PerplexityMath, ErrorFollowsLlamaPerplexity) {
    NllAccumulator acc;
    const std::vector<double> v = {1.0, 2.0, 3.0, 4.5, 0.25};
    double mean = 0;
    for (double x : v) {
        acc.add(x);
        mean += x / v.size();
    }
    double var = 0;  // population variance, as llama.cpp's nll2/count - mean^2
    for (double x : v) var += (x - mean) * (x - mean) / v.size();
    EXPECT_EQ(acc.count(), 5);
    EXPECT_NEAR(acc.mean(), mean, 1e-12);
    EXPECT_NEAR(acc.ppl(), std::exp(mean), 1e-9);
    EXPECT_NEAR(acc.ppl_error(), std::exp(mean) * std::sqrt(var / 4.0), 1e-9);

    NllAccumulator a, b;
    a.add(1.0);
    a.add(2.0);
    b.add(3.0);
    b.add(4.5);
    b.add(0.25);
    a.merge(b);
    EXPECT_NEAR(a.ppl_error(), acc.ppl_error(), 1e-12);
    NllAccumulator one;
    one.add(2.0);
    EXPECT_EQ(one.ppl_error(), 0.0);
}

TEST(PerplexityWindows, BosFirstThenConsecutiveText) {
    std::vector<int> text(25);
    for (int i = 0; i < 25; ++i) text[static_cast<size_t>(i)] = 100 + i;
    EXPECT_EQ(count_ppl_windows(text.size(), 8, 7), 3);   // 7 text tokens per window
    EXPECT_EQ(count_ppl_windows(text.size(), 8, -1), 3);  // 8 per window
    EXPECT_EQ(count_ppl_windows(text.size(), 26, 7), 1);
    EXPECT_EQ(count_ppl_windows(text.size(), 27, 7), 0);
    EXPECT_EQ(ppl_window(text, 8, 7, 0), (std::vector<int>{7, 100, 101, 102, 103, 104, 105, 106}));
    EXPECT_EQ(ppl_window(text, 8, 7, 2), (std::vector<int>{7, 114, 115, 116, 117, 118, 119, 120}));
    EXPECT_EQ(ppl_window(text, 8, -1, 1), (std::vector<int>{108, 109, 110, 111, 112, 113, 114, 115}));
    EXPECT_THROW(ppl_window(text, 8, 7, 3), Error);
    EXPECT_EQ(ppl_scored_per_window(8), 3);  // positions 4, 5, 6 predict tokens 5, 6, 7
    EXPECT_EQ(ppl_scored_per_window(512), 255);
}

TEST(EvalFlagLists, ParsesAndRejects) {
    EXPECT_EQ(parse_int_list("1024, 4096,8", "--ctx", 1), (std::vector<int>{1024, 4096, 8}));
    EXPECT_EQ(parse_real_list("0,0.5,1", "--depth", 0, 1), (std::vector<double>{0.0, 0.5, 1.0}));
    EXPECT_EQ(split_list("full,quest", "--attn"), (std::vector<std::string>{"full", "quest"}));
    const auto error_of = [](auto fn) {
        try {
            fn();
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(error_of([] { parse_int_list("0", "--ctx", 1); }).find("--ctx '0': 0 is below the minimum 1"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_int_list("12x", "--ctx", 1); }).find("'12x' is not an integer"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_int_list("1,,2", "--ctx", 1); }).find("empty items"), std::string::npos);
    EXPECT_NE(error_of([] { parse_int_list("", "--ctx", 1); }).find("--ctx"), std::string::npos);
    EXPECT_NE(error_of([] {
                  parse_real_list("1.5", "--depth", 0, 1);
              }).find("--depth '1.5': 1.5 is outside [0, 1]"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_real_list("nan", "--depth", 0, 1); }).find("not a number"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_real_list("-0.1", "--depth", 0, 1); }).find("outside"), std::string::npos);
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

class HfGoldenPerplexity : public ::testing::Test {
protected:
    void SetUp() override {
        const fs::path dir = fs::path(DSA_TEST_DATA) / "models" / "llama";
        const nlohmann::json golden = nlohmann::json::parse(read_file(dir / "golden.json"));
        ids = golden["ids"].get<std::vector<int>>();
        vocab = golden["logits_shape"][1].get<int>();
        hf_logits.resize(ids.size() * static_cast<size_t>(vocab));  // [len(ids)][vocab]
        std::ifstream f(dir / "golden_logits.f32", std::ios::binary);
        f.read(reinterpret_cast<char*>(hf_logits.data()), static_cast<std::streamsize>(hf_logits.size() * 4));
        ASSERT_TRUE(f) << "golden_logits.f32 too short";
        model = std::make_unique<Model>(load_model(dir));
        BackendOptions opts;
        opts.context = 64;
        opts.threads = 1;
        backend = make_backend("cpu", *model, opts);
    }

    // NLLs of tokens first+1 .. n-1 from HF's logits at positions first .. n-2 (row i: logits after
    // ids[0..i]).
    NllAccumulator hf_nll(int n) const {
        NllAccumulator acc;
        for (int j = n / 2; j < n - 1; ++j) {
            const std::span<const float> row(hf_logits.data() + static_cast<size_t>(j) * vocab,
                                             static_cast<size_t>(vocab));
            acc.add(token_nll(row, ids[static_cast<size_t>(j) + 1]));
        }
        return acc;
    }

    std::vector<int> ids;
    int vocab = 0;
    std::vector<float> hf_logits;
    std::unique_ptr<Model> model;
    std::unique_ptr<Backend> backend;
};

TEST_F(HfGoldenPerplexity, WindowNllMatchesHf) {
    const int n = static_cast<int>(ids.size());  // 53: positions 26..51 are scored
    const NllAccumulator want = hf_nll(n);
    ASSERT_EQ(want.count(), ppl_scored_per_window(n));
    const std::span<const int> window(ids);
    for (const bool decode : {false, true}) {
        for (const int batch : {5, 512}) {
            SCOPED_TRACE(std::string(decode ? "decode steps" : "chunked") + ", batch " +
                         std::to_string(batch));
            PplSettings s;
            s.batch = batch;
            s.decode_scored = decode;
            NllAccumulator got;
            const double attended = score_ppl_window(*backend, window, s, got);
            EXPECT_EQ(got.count(), want.count());
            EXPECT_NEAR(got.mean(), want.mean(), 1e-4 * want.mean());
            EXPECT_NEAR(got.ppl_error(), want.ppl_error(), 1e-3 * want.ppl_error());
            // Full attention: the scored query at position j attends j + 1 tokens.
            double full = 0;
            for (int j = n / 2; j < n - 1; ++j) full += j + 1;
            EXPECT_NEAR(attended, full, 1e-6 * full);
        }
    }
}

TEST_F(HfGoldenPerplexity, RunScoresEveryWindowOnAFreshSequence) {
    // Two windows of 24 without BOS: window k = ids[24k, 24k + 24). Each starts from an empty cache, so its
    // NLLs are those of the window alone; the second window's are checked by scoring it separately.
    PplSettings s;
    s.ctx = 24;
    s.batch = 7;
    s.progress = false;
    const std::span<const int> text(ids);
    const PplResult r = run_perplexity(*backend, text, s);
    EXPECT_EQ(r.windows, 2);
    EXPECT_EQ(r.nll.count(), 2 * ppl_scored_per_window(24));
    NllAccumulator first, second;
    score_ppl_window(*backend, text.subspan(0, 24), s, first);
    score_ppl_window(*backend, text.subspan(24, 24), s, second);
    // The first window is a prefix of the golden sequence, so HF's logits give its NLLs directly.
    EXPECT_NEAR(first.mean(), hf_nll(24).mean(), 1e-4 * first.mean());
    first.merge(second);
    EXPECT_NEAR(r.nll.mean(), first.mean(), 1e-9);

    s.max_windows = 1;
    EXPECT_EQ(run_perplexity(*backend, text, s).windows, 1);
    s.ctx = 60;
    EXPECT_THROW(run_perplexity(*backend, text, s), Error);  // 53 tokens hold no window of 60
}

}  // namespace
}  // namespace dsa
