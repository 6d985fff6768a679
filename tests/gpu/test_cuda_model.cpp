// The whole model on the GPU against the CPU reference backend: the golden test models (one per
// architecture feature and storage dtype), prefill logits of every prompt position and 32 greedy decode
// steps with identical tokens and logits within 1e-2; CUDA-graph decode bit-identical to eager decode; and
// a random-weight model (the --random-weights path) at bf16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attention/policy.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/linear.h"
#include "gpu_test_util.h"
#include "kernels/launch.h"
#include "model/random_weights.h"

namespace dsa::test {
namespace {

namespace fs = std::filesystem;

constexpr int kDecodeSteps = 32;

int argmax(std::span<const float> v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Relative error of each row; the largest one.
double max_row_error(const std::vector<float>& got, const std::vector<float>& ref, size_t vocab) {
    double worst = 0;
    for (size_t r = 0; r * vocab < ref.size(); ++r) {
        const std::vector<float> a(got.begin() + r * vocab, got.begin() + (r + 1) * vocab);
        const std::vector<float> b(ref.begin() + r * vocab, ref.begin() + (r + 1) * vocab);
        const double e = rel_error(a, b);
        worst = std::isnan(e) ? e : std::max(worst, e);
    }
    return worst;
}

// Prefills `prompt` on both backends (all positions' logits), then decodes greedily for kDecodeSteps steps
// feeding the CPU's token to both. expect_same_tokens: the GPU's argmax must equal the CPU's at every step.
// golden: HF's logits of the prompt positions ([prompt][vocab]), or empty.
void compare_backends(const Model& model, const std::vector<int>& prompt, int page_size,
                      bool expect_same_tokens, const std::vector<float>& golden = {}) {
    BackendOptions opts;
    opts.context = 2 * (static_cast<int>(prompt.size()) + kDecodeSteps + 16);  // two sequences on the GPU
    opts.page_size = page_size;
    auto cpu = make_backend("cpu", model, opts);
    CudaBackend gpu(model, opts);
    const size_t V = static_cast<size_t>(model.config.vocab_size);

    Sequence s_cpu, s_gpu, s_greedy;
    std::vector<float> l_cpu(prompt.size() * V), l_gpu(prompt.size() * V, NAN);
    cpu->forward(s_cpu, prompt, LogitsMode::All, l_cpu);
    gpu.forward(s_gpu, prompt, LogitsMode::All, l_gpu);
    // ||gpu - cpu|| / ||cpu|| over all positions' logits. The worst single row is printed: bf16 rounding of
    // activations, q/k/v and attention weights alone puts it at 1.03e-2 for qwen3 (an fp32 HF run with
    // those roundings emulated, see docs/perf.md), so it is reported, not asserted.
    EXPECT_LE(rel_error(l_gpu, l_cpu), 1e-2) << "prefill logits, page size " << page_size;
    if (!golden.empty()) {  // which side is off when the two disagree
        std::printf("  prefill logits: GPU vs CPU %.2e (worst row %.2e), GPU vs HF %.2e, CPU vs HF %.2e\n",
                    rel_error(l_gpu, l_cpu), max_row_error(l_gpu, l_cpu, V), rel_error(l_gpu, golden),
                    rel_error(l_cpu, golden));
        EXPECT_LE(rel_error(l_gpu, golden), 1e-2) << "prefill logits vs HF";
    }

    std::vector<float> last(V);
    gpu.forward(s_greedy, prompt, LogitsMode::Last, last);
    EXPECT_LE(rel_error(last, std::vector<float>(l_cpu.end() - static_cast<ptrdiff_t>(V), l_cpu.end())),
              1e-2);

    int token = argmax(std::span<const float>(l_cpu).last(V));
    int greedy_token = argmax(std::span<const float>(l_gpu).last(V));
    std::vector<float> d_cpu(V), d_gpu(V);
    for (int step = 0; step < kDecodeSteps; ++step) {
        if (expect_same_tokens) {
            ASSERT_EQ(greedy_token, token) << "step " << step;
        }
        cpu->forward(s_cpu, std::vector<int>{token}, LogitsMode::Last, d_cpu);
        gpu.forward(s_gpu, std::vector<int>{token}, LogitsMode::Last, d_gpu);
        ASSERT_LE(rel_error(d_gpu, d_cpu), 1e-2) << "decode step " << step;
        const int next = argmax(d_cpu);
        greedy_token = gpu.forward_greedy(s_greedy, token);
        if (expect_same_tokens) {
            EXPECT_EQ(argmax(d_gpu), next) << "step " << step;
        }
        token = next;
    }
    EXPECT_EQ(s_gpu.n_tokens, static_cast<int>(prompt.size()) + kDecodeSteps);
    gpu.release(s_gpu);
    gpu.release(s_greedy);
    EXPECT_TRUE(s_gpu.pages.empty());
}

TEST(GpuModel, GoldenModelsMatchCpuBackend) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models in " << DSA_TEST_DATA << "/models";
    for (const std::string& name : names) {
        SCOPED_TRACE(name);
        const fs::path dir = fs::path(DSA_TEST_DATA) / "models" / name;
        const Model model = load_model(dir);
        nlohmann::json g;
        std::ifstream(dir / "golden.json") >> g;
        const std::vector<int> ids = g["ids"].get<std::vector<int>>();
        const std::vector<int> prompt(ids.begin(), ids.begin() + g["prompt_len"].get<int>());
        std::vector<float> golden(prompt.size() * static_cast<size_t>(model.config.vocab_size));
        std::ifstream(dir / "golden_logits.f32", std::ios::binary)
            .read(reinterpret_cast<char*>(golden.data()), static_cast<std::streamsize>(golden.size() * 4));
        std::printf("%s (%s, head_dim %d, %d/%d heads)\n", name.c_str(),
                    std::string(dtype_name(model.weight_dtype())).c_str(), model.config.head_dim,
                    model.config.n_heads, model.config.n_kv_heads);
        for (int page_size : {16, 32}) compare_backends(model, prompt, page_size, true, golden);
    }
}

// Each golden model cut to its first n layers: prefill logits within 1e-2 of the CPU at every depth (the
// errors are printed, so a disagreement can be traced to the layer where it starts).
TEST(GpuModel, GoldenModelsMatchCpuAtEveryDepth) {
    DSA_REQUIRE_GPU();
    for (const std::string& name : golden_models()) {
        const fs::path dir = fs::path(DSA_TEST_DATA) / "models" / name;
        nlohmann::json g;
        std::ifstream(dir / "golden.json") >> g;
        const std::vector<int> ids = g["ids"].get<std::vector<int>>();
        const std::vector<int> prompt(ids.begin(), ids.begin() + g["prompt_len"].get<int>());
        Model model = load_model(dir);
        const int L = model.config.n_layers;
        std::printf("%s:", name.c_str());
        for (int n = 1; n <= L; ++n) {
            model.config.n_layers = n;
            model.weights = bind_weights(model.config, model.store);
            BackendOptions opts;
            opts.context = 64;
            auto cpu = make_backend("cpu", model, opts);
            CudaBackend gpu(model, opts);
            const size_t V = static_cast<size_t>(model.config.vocab_size);
            Sequence a, b;
            std::vector<float> la(prompt.size() * V), lb(prompt.size() * V);
            cpu->forward(a, prompt, LogitsMode::All, la);
            gpu.forward(b, prompt, LogitsMode::All, lb);
            std::printf(" %d layers %.2e |", n, rel_error(lb, la));
            EXPECT_LE(rel_error(lb, la), 1e-2) << name << ", " << n << " layers";
        }
        std::printf("\n");
    }
}

TEST(GpuModel, GraphDecodeIsBitIdenticalToEagerDecode) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / names.front());
    BackendOptions opts;
    opts.context = 128;
    CudaBackend graph(model, opts), eager(model, opts);
    eager.set_use_graphs(false);
    const size_t V = static_cast<size_t>(model.config.vocab_size);
    Sequence a, b;
    std::vector<float> la(V), lb(V);
    graph.forward(a, std::vector<int>{3, 5, 7, 11, 13}, LogitsMode::Last, la);
    eager.forward(b, std::vector<int>{3, 5, 7, 11, 13}, LogitsMode::Last, lb);
    for (int step = 0; step < 40; ++step) {  // crosses page boundaries: the block table grows under the graph
        const int t = argmax(la);
        graph.forward(a, std::vector<int>{t}, LogitsMode::Last, la);
        eager.forward(b, std::vector<int>{t}, LogitsMode::Last, lb);
        ASSERT_EQ(la, lb) << "step " << step;
    }
}

// The launch modes change when a kernel may start, never what it computes: 40 graph-replayed greedy steps
// give the same logits, bit for bit, under every mode.
TEST(GpuModel, ProgrammaticLaunchModesAreBitIdentical) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / names.front());
    BackendOptions opts;
    opts.context = 128;
    const size_t V = static_cast<size_t>(model.config.vocab_size);
    std::vector<std::vector<float>> runs;
    for (const cuda::ProgrammaticLaunch mode :
         {cuda::ProgrammaticLaunch::Off, cuda::ProgrammaticLaunch::Gemv, cuda::ProgrammaticLaunch::All}) {
        cuda::set_programmatic_launch(mode);
        CudaBackend gpu(model, opts);
        Sequence s;
        std::vector<float> l(V), all;
        gpu.forward(s, std::vector<int>{3, 5, 7, 11, 13}, LogitsMode::Last, l);
        for (int step = 0; step < 40; ++step) {
            gpu.forward(s, std::vector<int>{argmax(l)}, LogitsMode::Last, l);
            all.insert(all.end(), l.begin(), l.end());
        }
        runs.push_back(all);
    }
    cuda::set_programmatic_launch(cuda::ProgrammaticLaunch::Off);
    EXPECT_EQ(runs[1], runs[0]) << "GEMVs launched early";
    EXPECT_EQ(runs[2], runs[0]) << "every kernel launched early";
}

// Every GEMV fusion level (linear.h) against none, on every golden model (bias, q/k norm, tied embeddings)
// and with a quest policy (the fused attention input writes the page metadata the selection reads): the
// logits of 40 teacher-forced steps and the tokens of 40 greedy steps (the LM head's fused argmax), bit
// for bit.
TEST(GpuModel, RowFusionLevelsAreBitIdentical) {
    DSA_REQUIRE_GPU();
    const auto names = golden_models();
    if (names.empty()) GTEST_SKIP() << "no golden models";
    const std::vector<cuda::RowFusion> levels = {cuda::RowFusion::None, cuda::RowFusion::Swiglu,
                                                 cuda::RowFusion::NormQkv, cuda::RowFusion::AttentionInput,
                                                 cuda::RowFusion::LmHead};
    const cuda::RowFusion saved = cuda::row_fusion();
    AttentionPolicy quest;
    quest.kind = PolicyKind::Quest;
    quest.budget = 32;
    quest.dense_layers = 1;
    validate_policy(quest);
    for (const std::string& name : names)
        for (const bool sparse : {false, true}) {
            SCOPED_TRACE(name + (sparse ? " quest" : " full"));
            const Model model = load_model(fs::path(DSA_TEST_DATA) / "models" / name);
            BackendOptions opts;
            opts.context = 160;
            if (sparse) opts.attention = quest;
            const size_t V = static_cast<size_t>(model.config.vocab_size);
            std::vector<float> logits0;
            std::vector<int> tokens0;
            for (const cuda::RowFusion level : levels) {
                cuda::set_row_fusion(level);
                CudaBackend gpu(model, opts);
                Sequence s, g;
                const std::vector<int> prompt = {3,  5,  7,   11,  13,  17,  19,  23,  29, 31, 37,
                                                 41, 43, 47,  53,  59,  61,  67,  71,  73, 79, 83,
                                                 89, 97, 101, 103, 107, 109, 113, 127, 131};
                std::vector<float> l(V), all;
                gpu.forward(s, prompt, LogitsMode::Last, l);
                gpu.forward(g, prompt, LogitsMode::Last, l);
                std::vector<int> tokens = {argmax(l)};
                for (int step = 0; step < 40; ++step) {
                    gpu.forward(s, std::vector<int>{(step * 37 + 11) % model.config.vocab_size},
                                LogitsMode::Last, l);
                    all.insert(all.end(), l.begin(), l.end());
                    tokens.push_back(gpu.forward_greedy(g, tokens.back()));
                }
                if (level == cuda::RowFusion::None) {
                    logits0 = all;
                    tokens0 = tokens;
                    continue;
                }
                EXPECT_TRUE(all == logits0) << "logits differ at fusion level " << static_cast<int>(level);
                EXPECT_EQ(tokens, tokens0) << "fusion level " << static_cast<int>(level);
            }
        }
    cuda::set_row_fusion(saved);
}

TEST(GpuModel, RandomWeightModelMatchesCpuBackend) {
    DSA_REQUIRE_GPU();
    Rng rng;
    const fs::path dir =
        fs::temp_directory_path() / ("dsa_random_model_" + std::to_string(rng.integer(0, 1 << 30)));
    fs::create_directories(dir);
    const nlohmann::json cfg = {{"architectures", {"Qwen2ForCausalLM"}},
                                {"hidden_size", 256},
                                {"intermediate_size", 512},
                                {"num_hidden_layers", 3},
                                {"num_attention_heads", 8},
                                {"num_key_value_heads", 2},
                                {"vocab_size", 1000},
                                {"max_position_embeddings", 4096},
                                {"rms_norm_eps", 1e-6},
                                {"rope_theta", 1000000.0},
                                {"tie_word_embeddings", false},
                                {"torch_dtype", "bfloat16"}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
    const Model model = make_random_model(dir / "config.json", 7);
    fs::remove_all(dir);
    EXPECT_EQ(model.weight_dtype(), DType::BF16);
    std::vector<int> prompt(300);
    for (int& t : prompt) t = rng.integer(0, 999);
    // Random weights give flat logits: near-ties make greedy equality a coin flip, so only logits compare.
    compare_backends(model, prompt, 16, false);
}

}  // namespace
}  // namespace dsa::test
