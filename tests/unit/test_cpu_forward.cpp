// The CPU backend against HF transformers' logits (tools/make_golden_models.py): tiny random models of
// every architecture, the prompt prefilled in chunks of 16 (every position compared), then 8 single-token
// decode steps. Tolerance: max|ours - HF| / max|HF| <= 1e-4 per position. Plus its kernels (weight
// conversion, matmul, page-list attention) against brute-force double-precision references.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "attention/cpu_attention.h"
#include "attention/policy.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ops.h"
#include "engine/backend.h"
#include "model/model.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace dsa {
namespace {

const std::string kModels = std::string(DSA_TEST_DATA) + "/models";

struct Golden {
    int prompt_len = 0;
    std::vector<int> ids;  // prompt, then the greedy decode tokens
    int vocab = 0;
    std::vector<float> logits;  // [ids.size()][vocab]
};

Golden load_golden(const std::string& dir) {
    Golden g;
    std::ifstream jf(dir + "/golden.json");
    const nlohmann::json j = nlohmann::json::parse(jf);
    g.prompt_len = j["prompt_len"].get<int>();
    g.ids = j["ids"].get<std::vector<int>>();
    g.vocab = j["logits_shape"][1].get<int>();
    g.logits.resize(g.ids.size() * g.vocab);
    std::ifstream lf(dir + "/golden_logits.f32", std::ios::binary);
    lf.read(reinterpret_cast<char*>(g.logits.data()), static_cast<std::streamsize>(g.logits.size() * 4));
    EXPECT_TRUE(lf.good()) << dir;
    return g;
}

// max|a - ref| / max|ref| over one row of logits.
double rel_err(const float* a, const float* ref, int n) {
    double max_diff = 0, max_ref = 0;
    for (int i = 0; i < n; ++i) {
        max_diff = std::max(max_diff, std::abs(static_cast<double>(a[i]) - ref[i]));
        max_ref = std::max(max_ref, std::abs(static_cast<double>(ref[i])));
    }
    return max_diff / max_ref;
}

BackendOptions options(int page_size = 16, int threads = 0) {
    BackendOptions o;
    o.context = 128;
    o.page_size = page_size;
    o.threads = threads;
    return o;
}

// Runs the prompt in chunks of `chunk` tokens (logits of every position), then the decode tokens one by
// one. Returns [ids.size()][vocab].
std::vector<float> run(Backend& b, const Golden& g, int chunk) {
    std::vector<float> out(g.ids.size() * g.vocab);
    Sequence seq;
    for (int p = 0; p < g.prompt_len; p += chunk) {
        const int T = std::min(chunk, g.prompt_len - p);
        b.forward(seq, std::span<const int>(g.ids).subspan(p, T), LogitsMode::All,
                  std::span<float>(out).subspan(static_cast<size_t>(p) * g.vocab,
                                                static_cast<size_t>(T) * g.vocab));
    }
    for (size_t p = g.prompt_len; p < g.ids.size(); ++p)
        b.forward(seq, std::span<const int>(g.ids).subspan(p, 1), LogitsMode::Last,
                  std::span<float>(out).subspan(p * g.vocab, g.vocab));
    EXPECT_EQ(seq.n_tokens, static_cast<int>(g.ids.size()));
    b.release(seq);
    return out;
}

class GoldenModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenModel, ChunkedPrefillThenDecodeMatchesHf) {
    const std::string dir = kModels + "/" + GetParam();
    const Golden g = load_golden(dir);
    const Model model = load_model(dir);
    ASSERT_EQ(model.config.vocab_size, g.vocab);
    auto backend = make_backend("cpu", model, options());
    const std::vector<float> ours = run(*backend, g, 16);
    double worst = 0;
    for (size_t p = 0; p < g.ids.size(); ++p) {
        const double e = rel_err(ours.data() + p * g.vocab, g.logits.data() + p * g.vocab, g.vocab);
        worst = std::max(worst, e);
        EXPECT_LE(e, 1e-4) << GetParam() << " position " << p
                           << (p < size_t(g.prompt_len) ? " (prefill)" : " (decode)");
    }
    RecordProperty("worst_rel_err", fmt::format("{:.2e}", worst));
}

// One chunk, 1-token steps, chunks of 7 and other page sizes all compute the same logits as chunks of 16
// (the per-row arithmetic does not depend on how the prompt is split).
TEST_P(GoldenModel, ChunkingAndPageSizeDoNotChangeLogits) {
    const std::string dir = kModels + "/" + GetParam();
    const Golden g = load_golden(dir);
    const Model model = load_model(dir);
    auto b16 = make_backend("cpu", model, options(16));
    const std::vector<float> base = run(*b16, g, 16);
    auto b64 = make_backend("cpu", model, options(64, 1));
    for (auto [backend, chunk] : {std::pair{b16.get(), g.prompt_len}, {b16.get(), 1}, {b64.get(), 7}}) {
        const std::vector<float> other = run(*backend, g, chunk);
        for (size_t p = 0; p < g.ids.size(); ++p)
            EXPECT_LE(rel_err(other.data() + p * g.vocab, base.data() + p * g.vocab, g.vocab), 1e-6)
                << GetParam() << " chunk " << chunk << " position " << p;
    }
}

INSTANTIATE_TEST_SUITE_P(CpuForward, GoldenModel,
                         ::testing::Values("llama", "llama_tied", "mistral", "qwen2", "qwen3"));

// The bundled default model against HF's logits of the same files (tools/make_default_golden.py, run where
// the model was trained): the checkpoint transformers loads is the one dsa computes.
TEST(CpuForward, DefaultModelMatchesHf) {
    const Golden g = load_golden(std::string(DSA_TEST_DATA) + "/default_model");
    const Model model = load_model(std::string(DSA_SOURCE_DIR) + "/models/default");
    ASSERT_EQ(model.config.vocab_size, g.vocab);
    auto backend = make_backend("cpu", model, options());
    const std::vector<float> ours = run(*backend, g, 16);
    for (size_t p = 0; p < g.ids.size(); ++p)
        EXPECT_LE(rel_err(ours.data() + p * g.vocab, g.logits.data() + p * g.vocab, g.vocab), 1e-4)
            << "position " << p;
}

TEST(CpuForward, LastModeReturnsTheLastRowOfAll) {
    const std::string dir = kModels + "/qwen3";
    const Golden g = load_golden(dir);
    const Model model = load_model(dir);
    auto b = make_backend("cpu", model, options());
    const std::span<const int> prompt = std::span<const int>(g.ids).first(g.prompt_len);
    std::vector<float> all(static_cast<size_t>(g.prompt_len) * g.vocab), last(g.vocab);
    Sequence s1, s2;
    b->forward(s1, prompt, LogitsMode::All, all);
    b->forward(s2, prompt, LogitsMode::Last, last);
    EXPECT_LE(rel_err(last.data(), all.data() + static_cast<size_t>(g.prompt_len - 1) * g.vocab, g.vocab),
              1e-6);
    EXPECT_DOUBLE_EQ(b->last_stats().attended_tokens, (g.prompt_len + 1) / 2.0);
}

TEST(CpuForward, ContextFullThrowsAndLeavesSequenceUnchanged) {
    const Model model = load_model(kModels + "/llama");
    BackendOptions o = options();
    o.context = 40;
    auto b = make_backend("cpu", model, o);
    EXPECT_EQ(b->context_capacity(), 40);
    std::vector<int> tokens(30, 5);
    std::vector<float> logits(model.config.vocab_size);
    Sequence seq;
    b->forward(seq, tokens, LogitsMode::Last, logits);
    const Sequence before = seq;
    EXPECT_THROW(b->forward(seq, std::span<const int>(tokens).first(11), LogitsMode::Last, logits), Error);
    EXPECT_EQ(seq.n_tokens, before.n_tokens);
    EXPECT_EQ(seq.pages, before.pages);
    b->forward(seq, std::span<const int>(tokens).first(10), LogitsMode::Last, logits);  // exactly full
    EXPECT_EQ(seq.n_tokens, 40);
}

TEST(CpuForward, RejectsBadTokensAndBuffers) {
    const Model model = load_model(kModels + "/llama");
    auto b = make_backend("cpu", model, options());
    std::vector<float> logits(model.config.vocab_size);
    Sequence seq;
    const std::vector<int> bad = {1, model.config.vocab_size};
    EXPECT_THROW(b->forward(seq, bad, LogitsMode::Last, logits), Error);
    EXPECT_EQ(seq.n_tokens, 0);
    const std::vector<int> ok = {1, 2};
    EXPECT_THROW(b->forward(seq, ok, LogitsMode::All, logits), Error);  // needs [2][vocab]
}

// forward_batch: each sequence's step as forward() alone gives it, bit for bit (its rows share the
// matmuls, never mix), under full and sparse attention; the stats are the means over the sequences; bad
// batches are rejected before any sequence advances.
TEST(CpuForward, BatchedDecodeEqualsEachSequenceAlone) {
    const Model model = load_model(kModels + "/llama");
    const size_t V = static_cast<size_t>(model.config.vocab_size);
    AttentionPolicy quest;
    quest.kind = PolicyKind::Quest;
    quest.budget = 32;  // 2 of the 5 pages of the longer sequence
    quest.dense_layers = 1;
    for (const AttentionPolicy& policy : {AttentionPolicy{}, quest}) {
        SCOPED_TRACE(describe_policy(policy));
        BackendOptions o = options();
        o.context = 96;
        o.max_batch = 2;
        o.attention = policy;
        auto batched = make_backend("cpu", model, o), alone = make_backend("cpu", model, o);
        std::vector<int> p0(70), p1 = {4, 1, 6};
        for (size_t i = 0; i < p0.size(); ++i) p0[i] = static_cast<int>((i * 7 + 3) % 50);
        Sequence a0, a1, b0, b1;
        std::vector<float> one(V), two(2 * V), ref(V);
        batched->forward(a0, p0, LogitsMode::Last, one);
        batched->forward(a1, p1, LogitsMode::Last, one);
        alone->forward(b0, p0, LogitsMode::Last, one);
        alone->forward(b1, p1, LogitsMode::Last, one);
        for (int step = 0; step < 3; ++step) {
            std::vector<Sequence*> pair = {&a1, &a0};  // rows in any order
            batched->forward_batch(pair, std::vector<int>{11 + step, 12 + step}, two);
            const ForwardStats st = batched->last_stats();
            alone->forward(b1, std::vector<int>{11 + step}, LogitsMode::Last, ref);
            const double att1 = alone->last_stats().attended_tokens;
            EXPECT_EQ(std::vector<float>(two.begin(), two.begin() + static_cast<ptrdiff_t>(V)), ref) << step;
            alone->forward(b0, std::vector<int>{12 + step}, LogitsMode::Last, ref);
            const double att0 = alone->last_stats().attended_tokens;
            EXPECT_EQ(std::vector<float>(two.begin() + static_cast<ptrdiff_t>(V), two.end()), ref) << step;
            EXPECT_DOUBLE_EQ(st.attended_tokens, (att0 + att1) / 2) << step;
            ASSERT_EQ(st.attended_per_layer.size(), static_cast<size_t>(model.config.n_layers));
        }
        EXPECT_EQ(a0.n_tokens, 73);
        EXPECT_EQ(a1.n_tokens, 6);
        if (policy.kind == PolicyKind::Quest) {
            EXPECT_LT(batched->last_stats().attended_tokens, (73 + 6) / 2.0);
        }

        Sequence c;
        std::vector<Sequence*> pair = {&a1, &a0}, twice = {&a0, &a0}, three = {&a0, &a1, &c};
        EXPECT_THROW(batched->forward_batch(twice, std::vector<int>{1, 2}, two), Error);
        EXPECT_THROW(batched->forward_batch(three, std::vector<int>{1, 2, 3}, two), Error);  // max_batch 2
        EXPECT_THROW(batched->forward_batch(pair, std::vector<int>{1}, two), Error);
        EXPECT_THROW(batched->forward_batch(pair, std::vector<int>{1, 2}, one), Error);  // needs [2][vocab]
        EXPECT_THROW(batched->forward_batch(pair, std::vector<int>{1, model.config.vocab_size}, two), Error);
        EXPECT_EQ(a0.n_tokens, 73);
        EXPECT_EQ(a1.n_tokens, 6);
    }
}

TEST(CpuForward, ContextTooLargeForMemoryNamesTheFlag) {
    const Model model = load_model(kModels + "/llama");
    BackendOptions o = options();
    o.context = 1 << 30;  // 2 layers x 2 heads x 16 dims x 8 bytes per token: 1 TiB of cache
    try {
        make_backend("cpu", model, o);
        FAIL() << "expected dsa::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("-c"), std::string::npos) << e.what();
    }
}

TEST(CpuForward, DefaultContextIsCappedModelContext) {
    const Model model = load_model(kModels + "/llama");  // max_position_embeddings 256
    BackendOptions o;
    EXPECT_EQ(make_backend("cpu", model, o)->context_capacity(), 256);
}

TEST(BackendFactory, DeviceChoice) {
    const Model model = load_model(kModels + "/llama");
    EXPECT_EQ(make_backend("cpu", model, options())->name(), "cpu");
    if (!cuda_compiled() || cuda_device_count() == 0) {
        EXPECT_EQ(make_backend("auto", model, options())->name(), "cpu");
    }
    EXPECT_THROW(make_backend("tpu", model, options()), Error);
    if (!cuda_compiled()) {
        try {
            make_backend("cuda", model, options());
            FAIL() << "expected dsa::Error";
        } catch (const Error& e) {
            EXPECT_STREQ(e.what(), "--device cuda: this dsa binary was built without CUDA support");
        }
    }
}

TEST(CpuOps, WeightConversionMatchesScalarForEveryValue) {
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    std::vector<float> out(all.size());
    for (DType t : {DType::F16, DType::BF16}) {
        std::fill(out.begin(), out.end(), -7.0f);
        weights_to_f32(all.data(), t, 0, all.size(), out.data());
        for (size_t i = 0; i < all.size(); ++i) {
            const float ref = load_as_f32(all.data(), t, i);
            if (std::isnan(ref)) {
                EXPECT_TRUE(std::isnan(out[i])) << dtype_name(t) << " " << i;
            } else {
                EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(ref))
                    << dtype_name(t) << " " << i;
            }
        }
    }
}

// Odd shapes (K not a multiple of 8, N not a multiple of the 16-row tile or the 4-row kernel, odd T) in
// every dtype, with bias, against a double-precision dot product of the same stored values.
TEST(CpuOps, MatmulMatchesDoubleReference) {
    std::mt19937 rng(5);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    ThreadPool pool(2);
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
        for (auto [T, N, K] : {std::tuple{1, 37, 45}, {5, 70, 64}, {3, 16, 7}, {8, 133, 200}}) {
            std::vector<float> wf(static_cast<size_t>(N) * K);
            for (float& v : wf) v = dist(rng);
            std::vector<uint16_t> wh(wf.size());
            for (size_t i = 0; i < wf.size(); ++i)
                wh[i] = dt == DType::F16 ? f32_to_f16(wf[i]) : f32_to_bf16(wf[i]);
            TensorView w;
            w.dtype = dt;
            w.shape = {N, K};
            w.data = dt == DType::F32 ? static_cast<const void*>(wf.data()) : wh.data();
            std::vector<float> x(static_cast<size_t>(T) * K), bias(N), out(static_cast<size_t>(T) * N, NAN);
            for (float& v : x) v = dist(rng);
            for (float& v : bias) v = dist(rng);
            matmul(pool, x.data(), T, w, bias.data(), out.data());
            for (int t = 0; t < T; ++t) {
                for (int n = 0; n < N; ++n) {
                    double ref = bias[n], mag = std::abs(bias[n]);
                    for (int k = 0; k < K; ++k) {
                        const double p =
                            static_cast<double>(w.at(static_cast<size_t>(n) * K + k)) * x[t * K + k];
                        ref += p;
                        mag += std::abs(p);
                    }
                    EXPECT_NEAR(out[t * N + n], ref, 1e-6 * mag) << dtype_name(dt) << " T=" << T << " N=" << N
                                                                 << " K=" << K << " t=" << t << " n=" << n;
                }
            }
        }
    }
}

// attend_pages over a page list that is not in allocation order, with a partial last page, against a
// two-pass double-precision softmax over the same tokens.
TEST(CpuAttention, PageListMatchesBruteForceSoftmax) {
    constexpr int G = 3, D = 24, P = 16, H = 2;
    KvCacheShape shape;
    shape.n_layers = 2;
    shape.n_kv_heads = H;
    shape.head_dim = D;
    shape.page_size = P;
    shape.num_pages = 8;
    PagedKvCache cache(shape);
    std::mt19937 rng(9);
    std::normal_distribution<float> dist(0.0f, 1.5f);
    Sequence seq;
    const int n_tokens = 3 * P + 5;
    cache.reserve(seq, n_tokens);
    std::swap(seq.pages[0], seq.pages[2]);
    std::vector<float> keys(static_cast<size_t>(n_tokens) * H * D), vals(keys.size());  // [pos][H][D]
    for (float& v : keys) v = dist(rng);
    for (float& v : vals) v = dist(rng);
    for (int pos = 0; pos < n_tokens; ++pos)
        cache.append(1, seq, pos, keys.data() + static_cast<size_t>(pos) * H * D, vals.data() + pos * H * D);
    std::vector<float> q(G * D), out(G * D, NAN);
    for (float& v : q) v = dist(rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (int kvh = 0; kvh < H; ++kvh) {
        PageListAttention a;
        a.layer = 1;
        a.kv_head = kvh;
        a.pages = seq.pages;
        a.last_page_tokens = 5;
        a.scale = scale;
        attend_pages(cache, a, q.data(), G, out.data());
        for (int g = 0; g < G; ++g) {
            std::vector<double> sc(n_tokens);
            double mx = -1e300, sum = 0;
            for (int j = 0; j < n_tokens; ++j) {
                double d = 0;
                for (int i = 0; i < D; ++i)
                    d += static_cast<double>(q[g * D + i]) * keys[(j * H + kvh) * D + i];
                sc[j] = d * scale;
                mx = std::max(mx, sc[j]);
            }
            for (double& v : sc) sum += (v = std::exp(v - mx));
            for (int i = 0; i < D; ++i) {
                double ref = 0;
                for (int j = 0; j < n_tokens; ++j) ref += sc[j] / sum * vals[(j * H + kvh) * D + i];
                EXPECT_NEAR(out[g * D + i], ref, 2e-6) << "kv head " << kvh << " g " << g << " i " << i;
            }
        }
    }
}

// A causal block of query tokens (crossing a page boundary) gives each token exactly what attend_pages
// gives over the positions that token may see.
TEST(CpuAttention, CausalBlockEqualsPerTokenPageLists) {
    constexpr int G = 2, D = 16, P = 16, H = 1, n_tokens = 40, first = 12, n_q = 9;
    KvCacheShape shape;
    shape.n_layers = 1;
    shape.n_kv_heads = H;
    shape.head_dim = D;
    shape.page_size = P;
    shape.num_pages = 3;
    PagedKvCache cache(shape);
    std::mt19937 rng(4);
    std::normal_distribution<float> dist(0.0f, 1.5f);
    Sequence seq;
    cache.reserve(seq, n_tokens);
    std::vector<float> kv(D);
    for (int pos = 0; pos < n_tokens; ++pos) {
        for (float& v : kv) v = dist(rng);
        cache.append(0, seq, pos, kv.data(), kv.data());
    }
    const size_t stride = G * D + 5;  // a padded token stride, as q_dim is for one kv head of many
    std::vector<float> q(n_q * stride), out(n_q * stride, NAN), one(G * D);
    for (float& v : q) v = dist(rng);
    CausalBlock b;
    b.pages = seq.pages;
    b.first_pos = first;
    b.n_queries = n_q;
    b.stride = stride;
    b.scale = 0.25f;
    attend_causal(cache, b, q.data(), G, out.data());
    for (int t = 0; t < n_q; ++t) {
        const int pos = first + t;
        PageListAttention a;
        a.pages = std::span<const int>(seq.pages).first(pos / P + 1);
        a.last_page_tokens = pos % P + 1;
        a.scale = 0.25f;
        attend_pages(cache, a, q.data() + t * stride, G, one.data());
        for (int i = 0; i < G * D; ++i) EXPECT_EQ(out[t * stride + i], one[i]) << "token " << t << " i " << i;
    }
}

}  // namespace
}  // namespace dsa
