// Weight binding and whole-model loading on tiny hand-written checkpoints of each architecture: every
// view points at the right tensor (values are a known function of the tensor name), counts are exact, and
// every missing/mis-shaped/mis-typed tensor is rejected with a message naming it.
#include <gtest/gtest.h>

#include <fstream>

#include "model/model.h"
#include "tests/unit/error_of.h"
#include "tests/unit/model_fixture.h"
#include "util/error.h"

namespace dsa {
namespace {

using test::TempDir;
using test::tiny_model;
using test::TinyModel;

using test::error_of;

// The view holds the fixture's values for `name` (so it is that tensor, not a neighbour).
void expect_tensor(const TensorView& t, const std::string& name, std::vector<int64_t> shape) {
    ASSERT_TRUE(t.valid()) << name;
    EXPECT_EQ(t.name, name);
    EXPECT_EQ(t.shape, shape) << name;
    for (int64_t i : {int64_t{0}, t.numel() / 2, t.numel() - 1}) {
        EXPECT_EQ(t.at(static_cast<size_t>(i)), test::fixture_value(name, i)) << name << "[" << i << "]";
    }
}

// Parameters of the fixture's shapes (hidden 32, inter 48, 2 layers, vocab 40), counted by hand.
int64_t expected_params(bool qwen3, bool bias, bool tie) {
    const int64_t h = 32, inter = 48, vocab = 40, hd = qwen3 ? 16 : 8, q = 4 * hd, kv = 2 * hd;
    int64_t layer = h + q * h + 2 * kv * h + h * q + h + 3 * inter * h;
    if (bias) layer += q + 2 * kv;
    if (qwen3) layer += 2 * hd;
    return vocab * h + 2 * layer + h + (tie ? 0 : vocab * h);
}

TEST(Weights, LlamaBindsEveryTensorByName) {
    TempDir dir;
    tiny_model("LlamaForCausalLM").write(dir.path());
    const Model m = load_model(dir.path());
    EXPECT_EQ(m.config.arch, Arch::Llama);
    const ModelWeights& w = m.weights;
    expect_tensor(w.embed, "model.embed_tokens.weight", {40, 32});
    expect_tensor(w.final_norm, "model.norm.weight", {32});
    expect_tensor(w.lm_head, "lm_head.weight", {40, 32});
    ASSERT_EQ(w.layers.size(), 2u);
    for (int i = 0; i < 2; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        const LayerWeights& l = w.layers[static_cast<size_t>(i)];
        expect_tensor(l.attn_norm, p + "input_layernorm.weight", {32});
        expect_tensor(l.wq, p + "self_attn.q_proj.weight", {32, 32});
        expect_tensor(l.wk, p + "self_attn.k_proj.weight", {16, 32});
        expect_tensor(l.wv, p + "self_attn.v_proj.weight", {16, 32});
        expect_tensor(l.wo, p + "self_attn.o_proj.weight", {32, 32});
        expect_tensor(l.mlp_norm, p + "post_attention_layernorm.weight", {32});
        expect_tensor(l.w_gate, p + "mlp.gate_proj.weight", {48, 32});
        expect_tensor(l.w_up, p + "mlp.up_proj.weight", {48, 32});
        expect_tensor(l.w_down, p + "mlp.down_proj.weight", {32, 48});
        EXPECT_FALSE(l.bq.valid());
        EXPECT_FALSE(l.q_norm.valid());
    }
    EXPECT_EQ(m.parameter_count(), expected_params(false, false, false));
    EXPECT_EQ(m.weight_bytes(), static_cast<size_t>(expected_params(false, false, false)) * 2);
    EXPECT_EQ(m.weight_dtype(), DType::BF16);
}

TEST(Weights, Qwen2BindsBiasesAndTiedHeadCountsOnce) {
    TempDir dir;
    tiny_model("Qwen2ForCausalLM", "F16", /*tie=*/true).write(dir.path());
    const Model m = load_model(dir.path());
    EXPECT_TRUE(m.config.attention_bias);
    const LayerWeights& l = m.weights.layers[1];
    expect_tensor(l.bq, "model.layers.1.self_attn.q_proj.bias", {32});
    expect_tensor(l.bk, "model.layers.1.self_attn.k_proj.bias", {16});
    expect_tensor(l.bv, "model.layers.1.self_attn.v_proj.bias", {16});
    EXPECT_EQ(m.weights.lm_head.data, m.weights.embed.data);
    EXPECT_EQ(m.parameter_count(), expected_params(false, true, true));
    EXPECT_EQ(m.weight_bytes(), static_cast<size_t>(expected_params(false, true, true)) * 2);
    EXPECT_EQ(m.weight_dtype(), DType::F16);
}

TEST(Weights, Qwen3BindsQkNormWithExplicitHeadDim) {
    TempDir dir;
    tiny_model("Qwen3ForCausalLM", "F32").write(dir.path());
    const Model m = load_model(dir.path());
    EXPECT_EQ(m.config.head_dim, 16);
    const LayerWeights& l = m.weights.layers[0];
    expect_tensor(l.wq, "model.layers.0.self_attn.q_proj.weight", {64, 32});
    expect_tensor(l.wo, "model.layers.0.self_attn.o_proj.weight", {32, 64});
    expect_tensor(l.q_norm, "model.layers.0.self_attn.q_norm.weight", {16});
    expect_tensor(l.k_norm, "model.layers.0.self_attn.k_norm.weight", {16});
    EXPECT_EQ(m.parameter_count(), expected_params(true, false, false));
    EXPECT_EQ(m.weight_bytes(), static_cast<size_t>(expected_params(true, false, false)) * 4);
    EXPECT_EQ(m.weight_dtype(), DType::F32);
}

TEST(Weights, MistralLoadsFromShards) {
    TempDir dir;
    tiny_model("MistralForCausalLM").write(dir.path(), /*shards=*/3);
    const Model m = load_model(dir.path());
    EXPECT_EQ(m.config.arch, Arch::Mistral);
    expect_tensor(m.weights.layers[1].w_down, "model.layers.1.mlp.down_proj.weight", {32, 48});
    expect_tensor(m.weights.lm_head, "lm_head.weight", {40, 32});
    EXPECT_EQ(m.parameter_count(), expected_params(false, false, false));
}

TEST(Weights, TiedCheckpointMayStillCarryLmHead) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    t.config["tie_word_embeddings"] = true;
    t.write(dir.path());
    const Model m = load_model(dir.path());
    EXPECT_EQ(m.weights.lm_head.data, m.weights.embed.data);  // HF ignores the stored lm_head when tied
}

TEST(Weights, GoldenTestModelsLoad) {
    // The HF-made test checkpoints (tools/make_golden_models.py); their golden.json names the storage dtype.
    const auto root = std::filesystem::path(DSA_TEST_DATA) / "models";
    if (!std::filesystem::is_directory(root)) GTEST_SKIP() << root << " not generated";
    int loaded = 0;
    for (const auto& entry : std::filesystem::directory_iterator(root)) {
        if (!std::filesystem::exists(entry.path() / "config.json")) continue;
        const Model m = load_model(entry.path());
        std::ifstream f(entry.path() / "golden.json");
        if (f) {
            const std::string dtype = nlohmann::json::parse(f).at("storage_dtype");
            const DType expected =
                dtype == "float32" ? DType::F32 : (dtype == "float16" ? DType::F16 : DType::BF16);
            EXPECT_EQ(m.weight_dtype(), expected) << entry.path();
        }
        EXPECT_EQ(m.weights.layers.size(), static_cast<size_t>(m.config.n_layers));
        ++loaded;
    }
    EXPECT_GT(loaded, 0);
}

TEST(Weights, RejectsMissingTensor) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    t.erase("model.layers.1.mlp.up_proj.weight");
    t.write(dir.path());
    const std::string err = error_of([&] { load_model(dir.path()); });
    EXPECT_NE(err.find(dir.path().string() + ": missing tensor model.layers.1.mlp.up_proj.weight (needed by "
                                             "LlamaForCausalLM)"),
              std::string::npos)
        << err;
}

TEST(Weights, RejectsMissingLmHeadWhenUntied) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    t.erase("lm_head.weight");
    t.write(dir.path());
    EXPECT_NE(error_of([&] { load_model(dir.path()); }).find("missing tensor lm_head.weight"),
              std::string::npos);
}

TEST(Weights, RejectsQwen2WithoutBias) {
    TempDir dir;
    TinyModel t = tiny_model("Qwen2ForCausalLM");
    t.erase("model.layers.0.self_attn.k_proj.bias");
    t.write(dir.path());
    EXPECT_NE(
        error_of([&] { load_model(dir.path()); }).find("missing tensor model.layers.0.self_attn.k_proj.bias"),
        std::string::npos);
}

TEST(Weights, RejectsQwen3WithoutQkNorm) {
    TempDir dir;
    TinyModel t = tiny_model("Qwen3ForCausalLM");
    t.erase("model.layers.1.self_attn.q_norm.weight");
    t.write(dir.path());
    EXPECT_NE(error_of([&] {
                  load_model(dir.path());
              }).find("missing tensor model.layers.1.self_attn.q_norm.weight"),
              std::string::npos);
}

TEST(Weights, RejectsShapeMismatch) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    *t.find("model.layers.0.self_attn.k_proj.weight") =
        test::fixture_tensor("model.layers.0.self_attn.k_proj.weight", "BF16", {32, 32});
    t.write(dir.path());
    const std::string err = error_of([&] { load_model(dir.path()); });
    EXPECT_NE(err.find("model.safetensors: tensor model.layers.0.self_attn.k_proj.weight has shape [32, 32], "
                       "expected [16, 32] from config.json"),
              std::string::npos)
        << err;
}

TEST(Weights, RejectsConfigThatDisagreesWithTheTensors) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    t.config["vocab_size"] = 41;
    t.write(dir.path());
    EXPECT_NE(error_of([&] {
                  load_model(dir.path());
              }).find("tensor model.embed_tokens.weight has shape [40, 32], expected [41, 32]"),
              std::string::npos);
}

TEST(Weights, RejectsMixedMatrixDtypes) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    *t.find("model.layers.1.mlp.gate_proj.weight") =
        test::fixture_tensor("model.layers.1.mlp.gate_proj.weight", "F32", {48, 32});
    t.write(dir.path());
    const std::string err = error_of([&] { load_model(dir.path()); });
    EXPECT_NE(err.find("tensor model.layers.1.mlp.gate_proj.weight has dtype F32, expected BF16 like "
                       "model.embed_tokens.weight"),
              std::string::npos)
        << err;
}

TEST(Weights, RejectsUnsupportedDtypeInCheckpoint) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    test::FixtureTensor* w = t.find("model.norm.weight");
    w->dtype = "F64";
    w->bytes = std::string(32 * 8, '\0');
    t.write(dir.path());
    EXPECT_NE(error_of([&] { load_model(dir.path()); }).find("tensor 'model.norm.weight' has dtype F64"),
              std::string::npos);
}

TEST(Weights, RejectsUnknownArchitectureNamingConfigJson) {
    TempDir dir;
    TinyModel t = tiny_model("LlamaForCausalLM");
    t.config["architectures"] = {"GPT2LMHeadModel"};
    t.write(dir.path());
    EXPECT_NE(
        error_of([&] { load_model(dir.path()); }).find("config.json: unknown architecture 'GPT2LMHeadModel'"),
        std::string::npos);
}

TEST(Weights, BindsOwnedBuffers) {
    // Random-weight benchmarking builds a store from owned buffers; binding works the same.
    TinyModel t = tiny_model("LlamaForCausalLM", "F32", /*tie=*/true);
    TensorStore store;
    for (const test::FixtureTensor& f : t.tensors) {
        std::vector<std::byte> bytes(f.bytes.size());
        std::memcpy(bytes.data(), f.bytes.data(), bytes.size());
        store.add_owned(f.name, DType::F32, f.shape, std::move(bytes));
    }
    const ModelConfig c = parse_model_config(t.config, "config.json");
    const ModelWeights w = bind_weights(c, store);
    expect_tensor(w.layers[1].wv, "model.layers.1.self_attn.v_proj.weight", {16, 32});
}

}  // namespace
}  // namespace dsa
