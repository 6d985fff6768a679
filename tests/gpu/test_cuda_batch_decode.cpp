// Batched decode on the GPU (forward_batch): three sequences of different lengths decoded together, in
// changing subsets and orders (so rows of the block tables change owner and each batch size has its own
// graph), interleaved with single-sequence steps, against the CPU reference decoding each sequence alone.
// Full attention must stay within 1e-2 of the CPU over each sequence's steps (a single step within 2e-2:
// bf16 rounding alone puts qwen3's worst position at 1.03e-2, docs/perf.md); the sparse policies get
// the allowances of test_cuda_sparse_model.cpp (near-tied page scores may pick other pages on bf16 inputs).
// A budget covering the context must reproduce batched full attention bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "attention/policy.h"
#include "backend/cuda/cuda_backend.h"
#include "gpu_test_util.h"
#include "sparse_test_policies.h"

namespace dsa::test {
namespace {

namespace fs = std::filesystem;

constexpr int kSeqs = 3;
constexpr int kPrompts[kSeqs] = {150, 97, 41};  // ragged: 10, 7 and 3 pages of 16, partial last pages
constexpr int kSteps = 24;

// Which sequences step together at step s, in row order, and which one then steps alone (-1: none).
struct StepPlan {
    std::vector<int> batch;
    int alone;
};

StepPlan plan(int step) {
    switch (step % 3) {
        case 0:
            return {{0, 1, 2}, -1};
        case 1:
            return {{2, 0}, 1};
        default:
            return {{1, 2}, 0};
    }
}

// Runs the prompts, then kSteps teacher-forced steps of the plan on `b`; logits[seq][step] of every step.
std::vector<std::vector<std::vector<float>>> run_plan(Backend& b, const std::vector<std::vector<int>>& tokens,
                                                      std::vector<double>* attended = nullptr) {
    const size_t V = static_cast<size_t>(b.model().config.vocab_size);
    std::vector<Sequence> seqs(kSeqs);
    std::vector<std::vector<std::vector<float>>> out(kSeqs);
    std::vector<float> last(V);
    for (int s = 0; s < kSeqs; ++s) {
        const std::vector<int> prompt(tokens[s].begin(), tokens[s].begin() + kPrompts[s]);
        b.forward(seqs[s], prompt, LogitsMode::Last, last);
    }
    for (int step = 0; step < kSteps; ++step) {
        const StepPlan p = plan(step);
        std::vector<Sequence*> rows;
        std::vector<int> toks;
        for (int s : p.batch) {
            rows.push_back(&seqs[s]);
            toks.push_back(tokens[s][static_cast<size_t>(kPrompts[s] + step)]);
        }
        std::vector<float> logits(rows.size() * V, NAN);
        b.forward_batch(rows, toks, logits);
        if (attended) attended->push_back(b.last_stats().attended_tokens);
        for (size_t r = 0; r < rows.size(); ++r)
            out[p.batch[r]].emplace_back(logits.begin() + r * V, logits.begin() + (r + 1) * V);
        if (p.alone >= 0) {
            std::fill(last.begin(), last.end(), NAN);
            const int tok = tokens[p.alone][static_cast<size_t>(kPrompts[p.alone] + step)];
            b.forward(seqs[p.alone], std::vector<int>{tok}, LogitsMode::Last, last);
            out[p.alone].push_back(last);
        }
    }
    for (int s = 0; s < kSeqs; ++s) {
        EXPECT_EQ(seqs[s].n_tokens, kPrompts[s] + kSteps);
        b.release(seqs[s]);
    }
    return out;
}

std::vector<std::vector<int>> random_streams(Rng& rng, int vocab) {
    std::vector<std::vector<int>> t(kSeqs);
    for (int s = 0; s < kSeqs; ++s) {
        t[s].resize(static_cast<size_t>(kPrompts[s] + kSteps));
        for (int& x : t[s]) x = rng.integer(0, vocab - 1);
    }
    return t;
}

BackendOptions batch_options(const AttentionPolicy& policy) {
    BackendOptions opts;
    opts.context = kPrompts[0] + kSteps + 8;
    opts.max_batch = kSeqs;
    opts.page_size = policy.page_size;
    opts.attention = policy;
    return opts;
}

TEST(GpuBatchDecode, FullAttentionMatchesCpuPerSequence) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    Rng rng;
    for (const std::string& name : names) {
        SCOPED_TRACE(name);
        const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / name);
        const auto tokens = random_streams(rng, model.config.vocab_size);
        const BackendOptions opts = batch_options(AttentionPolicy{});
        auto cpu = make_backend("cpu", model, opts);
        CudaBackend gpu(model, opts);
        const auto ref = run_plan(*cpu, tokens), got = run_plan(gpu, tokens);
        double worst = 0;
        for (int s = 0; s < kSeqs; ++s) {
            ASSERT_EQ(got[s].size(), static_cast<size_t>(kSteps));
            std::vector<float> all_got, all_ref;
            for (int step = 0; step < kSteps; ++step) {
                const double e = rel_error(got[s][step], ref[s][step]);
                EXPECT_LE(e, 2e-2) << "sequence " << s << " step " << step;  // and NaN
                worst = std::max(worst, e);
                all_got.insert(all_got.end(), got[s][step].begin(), got[s][step].end());
                all_ref.insert(all_ref.end(), ref[s][step].begin(), ref[s][step].end());
            }
            EXPECT_LE(rel_error(all_got, all_ref), 1e-2) << "sequence " << s << ", all steps";
        }
        std::printf("  %-10s batched full attention: worst rel error %.2e over %d sequences x %d steps\n",
                    name.c_str(), worst, kSeqs, kSteps);
    }
}

TEST(GpuBatchDecode, SparsePoliciesMatchCpuPerSequence) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    Rng rng;
    const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / names.front());
    const auto tokens = random_streams(rng, model.config.vocab_size);
    for (const AttentionPolicy& policy : test_policies()) {
        SCOPED_TRACE(describe_policy(policy));
        const BackendOptions opts = batch_options(policy);
        auto cpu = make_backend("cpu", model, opts);
        CudaBackend gpu(model, opts);
        std::vector<double> a_cpu, a_gpu;
        const auto ref = run_plan(*cpu, tokens, &a_cpu), got = run_plan(gpu, tokens, &a_gpu);
        int over = 0;
        double worst = 0;
        for (int s = 0; s < kSeqs; ++s) {
            for (int step = 0; step < kSteps; ++step) {
                const double e = rel_error(got[s][step], ref[s][step]);
                ASSERT_LE(e, max_step_error(policy)) << "sequence " << s << " step " << step;
                over += e > 1e-2;
                worst = std::max(worst, e);
            }
        }
        double attended_gap = 0;
        for (size_t i = 0; i < a_cpu.size(); ++i)
            attended_gap = std::max(attended_gap, std::abs(a_cpu[i] - a_gpu[i]));
        EXPECT_LE(attended_gap, 16.0) << "mean tokens attended per batched step";
        EXPECT_LE(over, allowed_steps_over(policy, kSeqs * kSteps))
            << "steps with logits more than 1e-2 from the CPU's";
        std::printf("  %-44s worst rel error %.2e, %d of %d steps > 1e-2, attended gap %.1f\n",
                    describe_policy(policy).c_str(), worst, over, kSeqs * kSteps, attended_gap);
    }
}

TEST(GpuBatchDecode, BudgetCoveringTheContextIsBitIdenticalToFull) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    Rng rng;
    const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / names.front());
    const auto tokens = random_streams(rng, model.config.vocab_size);
    CudaBackend full(model, batch_options(AttentionPolicy{}));
    const auto ref = run_plan(full, tokens);
    AttentionPolicy quest;
    quest.kind = PolicyKind::Quest;
    quest.budget = 256;
    quest.dense_layers = 0;
    validate_policy(quest);
    CudaBackend sparse(model, batch_options(quest));
    const auto got = run_plan(sparse, tokens);
    for (int s = 0; s < kSeqs; ++s)
        for (int step = 0; step < kSteps; ++step) ASSERT_EQ(got[s][step], ref[s][step]) << s << " " << step;
}

TEST(GpuBatchDecode, BadBatchesAreErrors) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / names.front());
    const size_t V = static_cast<size_t>(model.config.vocab_size);
    CudaBackend gpu(model, batch_options(AttentionPolicy{}));
    Sequence a, b, c, d;
    std::vector<float> logits(4 * V);
    const std::vector<int> one = {1, 2};
    gpu.forward(a, one, LogitsMode::Last, std::span<float>(logits).first(V));
    std::vector<Sequence*> twice = {&a, &a};
    EXPECT_THROW(gpu.forward_batch(twice, std::vector<int>{1, 2}, logits), Error);
    std::vector<Sequence*> four = {&a, &b, &c, &d};
    EXPECT_THROW(gpu.forward_batch(four, std::vector<int>{1, 2, 3, 4}, logits), Error);
    std::vector<Sequence*> pair = {&a, &b};
    EXPECT_THROW(gpu.forward_batch(pair, std::vector<int>{1}, logits), Error);
    EXPECT_THROW(gpu.forward_batch(pair, std::vector<int>{1, model.config.vocab_size}, logits), Error);
    EXPECT_EQ(a.n_tokens, 2);
    EXPECT_EQ(b.n_tokens, 0);
}

}  // namespace
}  // namespace dsa::test
