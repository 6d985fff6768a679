// config.json parsing against the published configs of real checkpoints (values as on their model cards)
// and HF-computed yarn attention factors (transformers 5.24, ROPE_INIT_FUNCTIONS["yarn"]).
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/config.h"
#include "tests/unit/error_of.h"
#include "tests/unit/model_fixture.h"
#include "util/error.h"

namespace dsa {
namespace {

using nlohmann::json;
using test::TempDir;

using test::error_of;

// Captures what spdlog logs while it lives.
class LogCapture {
public:
    LogCapture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
    }
    ~LogCapture() { spdlog::set_default_logger(previous_); }
    std::string text() const { return out_.str(); }

private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::logger> previous_;
};

const json kLlama31_8B = json::parse(R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256})");

const json kQwen25_05B = json::parse(R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
  "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");

const json kQwen3_06B = json::parse(R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
  "initializer_range": 0.02, "intermediate_size": 3072, "max_position_embeddings": 40960,
  "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
  "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})");

const json kMistral7B_v01 = json::parse(R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
  "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 32000})");

TEST(ModelConfig, Llama31_8B) {
    const ModelConfig c = parse_model_config(kLlama31_8B, "config.json");
    EXPECT_EQ(c.arch, Arch::Llama);
    EXPECT_EQ(c.arch_name, "LlamaForCausalLM");
    EXPECT_EQ(c.hidden_size, 4096);
    EXPECT_EQ(c.intermediate_size, 14336);
    EXPECT_EQ(c.n_layers, 32);
    EXPECT_EQ(c.n_heads, 32);
    EXPECT_EQ(c.n_kv_heads, 8);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.group_size(), 4);
    EXPECT_EQ(c.q_dim(), 4096);
    EXPECT_EQ(c.kv_dim(), 1024);
    EXPECT_EQ(c.vocab_size, 128256);
    EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
    EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
    EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
    EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
    EXPECT_FALSE(c.tie_word_embeddings);
    EXPECT_FALSE(c.attention_bias);
    EXPECT_FALSE(c.qk_norm);
    EXPECT_EQ(c.max_position_embeddings, 131072);
    EXPECT_EQ(c.bos_token_id, 128000);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
    EXPECT_EQ(c.torch_dtype, DType::BF16);
}

TEST(ModelConfig, Qwen25AlwaysHasQkvBiasAndTiesEmbeddings) {
    LogCapture log;
    const ModelConfig c = parse_model_config(kQwen25_05B, "config.json");
    EXPECT_EQ(c.arch, Arch::Qwen2);
    EXPECT_TRUE(c.attention_bias);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.head_dim, 64);
    EXPECT_EQ(c.group_size(), 7);
    EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
    EXPECT_EQ(c.rope_scaling.type, RopeType::Default);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{151645}));
    EXPECT_EQ(log.text(), "");  // use_sliding_window false: nothing to warn about
}

TEST(ModelConfig, Qwen3HasExplicitHeadDimAndQkNorm) {
    const ModelConfig c = parse_model_config(kQwen3_06B, "config.json");
    EXPECT_EQ(c.arch, Arch::Qwen3);
    EXPECT_EQ(c.head_dim, 128);  // not hidden / heads = 64
    EXPECT_EQ(c.q_dim(), 2048);
    EXPECT_TRUE(c.qk_norm);
    EXPECT_FALSE(c.attention_bias);
    EXPECT_EQ(c.rope_scaling.type, RopeType::Default);
    EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);  // written as an integer
    EXPECT_EQ(c.max_position_embeddings, 40960);
}

TEST(ModelConfig, Qwen3HeadDimDefaultsTo128LikeHf) {
    json j = kQwen3_06B;
    j.erase("head_dim");
    EXPECT_EQ(parse_model_config(j, "config.json").head_dim, 128);
}

TEST(ModelConfig, MistralSlidingWindowWarnsButLoads) {
    LogCapture log;
    const ModelConfig c = parse_model_config(kMistral7B_v01, "config.json");
    EXPECT_EQ(c.arch, Arch::Mistral);
    EXPECT_FALSE(c.attention_bias);
    EXPECT_EQ(c.bos_token_id, 1);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2}));
    EXPECT_NE(
        log.text().find("config.json: 32 of 32 layers use a sliding window of 4096 tokens; dsa attends the "
                        "full context"),
        std::string::npos)
        << log.text();
}

TEST(ModelConfig, MistralWithoutWindowDoesNotWarn) {
    LogCapture log;
    json j = kMistral7B_v01;
    j["sliding_window"] = nullptr;  // Mistral v0.2+
    parse_model_config(j, "config.json");
    j["sliding_window"] = 32768;  // as long as the context: no effect
    parse_model_config(j, "config.json");
    EXPECT_EQ(log.text(), "");
}

TEST(ModelConfig, QwenSlidingWindowWarnsOnlyWhenALayerSlides) {
    json j = kQwen25_05B;
    j["use_sliding_window"] = true;
    j["sliding_window"] = 4096;
    {
        LogCapture log;  // max_window_layers 21 of 24: layers 21..23 slide
        parse_model_config(j, "config.json");
        EXPECT_NE(log.text().find("3 of 24 layers use a sliding window of 4096 tokens"), std::string::npos)
            << log.text();
    }
    {
        LogCapture log;  // explicit layer_types win over max_window_layers
        j["layer_types"] = json::array();
        for (int i = 0; i < 24; ++i)
            j["layer_types"].push_back(i % 2 ? "sliding_attention" : "full_attention");
        parse_model_config(j, "config.json");
        EXPECT_NE(log.text().find("12 of 24 layers"), std::string::npos) << log.text();
    }
    {
        LogCapture log;  // HF slides no layer here, so neither warning nor difference
        j.erase("layer_types");
        j["max_window_layers"] = 24;
        parse_model_config(j, "config.json");
        EXPECT_EQ(log.text(), "");
    }
}

TEST(ModelConfig, LlamaAttentionBias) {
    json j = kLlama31_8B;
    j["attention_bias"] = true;
    EXPECT_TRUE(parse_model_config(j, "config.json").attention_bias);
}

TEST(ModelConfig, Transformers5RopeParametersHoldTheta) {
    // As written by transformers 5 save_pretrained: no top-level rope_theta.
    json j = kLlama31_8B;
    j.erase("rope_scaling");
    j.erase("rope_theta");
    j["rope_parameters"] = {{"factor", 8.0},          {"high_freq_factor", 4.0},
                            {"low_freq_factor", 1.0}, {"original_max_position_embeddings", 8192},
                            {"rope_theta", 500000.0}, {"rope_type", "llama3"}};
    const ModelConfig c = parse_model_config(j, "config.json");
    EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);

    j["rope_parameters"] = {{"rope_theta", 20000.0}, {"rope_type", "default"}};
    const ModelConfig d = parse_model_config(j, "config.json");
    EXPECT_DOUBLE_EQ(d.rope_theta, 20000.0);
    EXPECT_EQ(d.rope_scaling.type, RopeType::Default);
}

TEST(ModelConfig, LinearRopeWithOldTypeKey) {
    json j = kMistral7B_v01;
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    const ModelConfig c = parse_model_config(j, "config.json");
    EXPECT_EQ(c.rope_scaling.type, RopeType::Linear);
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 2.0);
    EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
}

TEST(ModelConfig, YarnAttentionFactorMatchesHf) {
    json j = kQwen3_06B;
    j["max_position_embeddings"] = 131072;
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
    ModelConfig c = parse_model_config(j, "config.json");
    EXPECT_EQ(c.rope_scaling.type, RopeType::Yarn);
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 4.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 32768);
    EXPECT_DOUBLE_EQ(c.rope_scaling.beta_fast, 32.0);
    EXPECT_DOUBLE_EQ(c.rope_scaling.beta_slow, 1.0);
    EXPECT_TRUE(c.rope_scaling.truncate);
    EXPECT_NEAR(c.rope_scaling.attention_factor, 1.138629436111989, 1e-14);

    // DeepSeek-style mscale / mscale_all_dim.
    j["rope_scaling"] = {
        {"type", "yarn"}, {"factor", 40.0},          {"original_max_position_embeddings", 4096},
        {"mscale", 1.0},  {"mscale_all_dim", 0.707}, {"beta_fast", 32},
        {"beta_slow", 1}};
    c = parse_model_config(j, "config.json");
    EXPECT_NEAR(c.rope_scaling.attention_factor, 1.0857263992561355, 1e-14);

    // factor null: max_position_embeddings / original (65536 / 4096 = 16).
    j["max_position_embeddings"] = 65536;
    j["rope_scaling"] = {{"type", "yarn"}, {"factor", nullptr}, {"original_max_position_embeddings", 4096}};
    c = parse_model_config(j, "config.json");
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 16.0);
    EXPECT_NEAR(c.rope_scaling.attention_factor, 1.2772588722239782, 1e-14);

    j["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}, {"attention_factor", 1.5}, {"truncate", false}};
    c = parse_model_config(j, "config.json");
    EXPECT_DOUBLE_EQ(c.rope_scaling.attention_factor, 1.5);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 65536);  // defaults to max_position_embeddings
    EXPECT_FALSE(c.rope_scaling.truncate);
}

TEST(ModelConfig, DerivedDefaultsWhenFieldsAreAbsent) {
    // A bare LlamaConfig(...).save_pretrained() has model_type but no architectures.
    const json j = {{"model_type", "llama"},  {"hidden_size", 64},        {"intermediate_size", 128},
                    {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"vocab_size", 100}};
    const ModelConfig c = parse_model_config(j, "config.json");
    EXPECT_EQ(c.arch, Arch::Llama);
    EXPECT_EQ(c.arch_name, "LlamaForCausalLM");
    EXPECT_EQ(c.n_kv_heads, 4);  // = num_attention_heads
    EXPECT_EQ(c.head_dim, 16);
    EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
    EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
    EXPECT_EQ(c.max_position_embeddings, 2048);  // LlamaConfig default
    EXPECT_EQ(c.bos_token_id, 1);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2}));
    EXPECT_EQ(c.torch_dtype, DType::BF16);
}

TEST(ModelConfig, TorchDtypeStrings) {
    json j = kMistral7B_v01;
    j["torch_dtype"] = "float32";
    EXPECT_EQ(parse_model_config(j, "config.json").torch_dtype, DType::F32);
    j["torch_dtype"] = "float16";
    EXPECT_EQ(parse_model_config(j, "config.json").torch_dtype, DType::F16);
    j.erase("torch_dtype");
    j["dtype"] = "bfloat16";  // transformers 5 spelling
    EXPECT_EQ(parse_model_config(j, "config.json").torch_dtype, DType::BF16);
    j["dtype"] = "float32";
    EXPECT_EQ(parse_model_config(j, "config.json").torch_dtype, DType::F32);
}

TEST(ModelConfig, NullTokenIdsMeanNone) {
    json j = kQwen3_06B;
    j["bos_token_id"] = nullptr;
    j["eos_token_id"] = nullptr;
    const ModelConfig c = parse_model_config(j, "config.json");
    EXPECT_EQ(c.bos_token_id, -1);
    EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(ModelConfig, GenerationConfigOverridesTokenIds) {
    TempDir dir;
    test::write_json(dir / "config.json", kQwen25_05B);
    test::write_json(dir / "generation_config.json",
                     {{"bos_token_id", 151643}, {"eos_token_id", {151645, 151643}}, {"do_sample", true}});
    const ModelConfig c = load_model_config(dir.path());
    EXPECT_EQ(c.bos_token_id, 151643);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{151645, 151643}));
}

TEST(ModelConfig, GenerationConfigSamplingSettings) {
    TempDir dir;
    test::write_json(dir / "config.json", kQwen25_05B);
    test::write_json(dir / "generation_config.json", {{"do_sample", false},
                                                      {"temperature", 0.7},
                                                      {"top_k", 20},
                                                      {"top_p", 0.8},
                                                      {"min_p", nullptr},
                                                      {"repetition_penalty", 1.05}});
    const GenerationDefaults g = load_model_config(dir.path()).generation;
    EXPECT_EQ(g.do_sample, false);
    EXPECT_EQ(g.temperature, 0.7);
    EXPECT_EQ(g.top_k, 20);
    EXPECT_EQ(g.top_p, 0.8);
    EXPECT_FALSE(g.min_p.has_value());  // null: not set
    EXPECT_EQ(g.repetition_penalty, 1.05);

    test::write_json(dir / "generation_config.json", {{"eos_token_id", 151643}});
    const GenerationDefaults none = load_model_config(dir.path()).generation;
    EXPECT_FALSE(none.do_sample || none.temperature || none.top_k || none.top_p || none.repetition_penalty);
}

TEST(ModelConfig, RejectsOutOfRangeGenerationConfigSettings) {
    TempDir dir;
    test::write_json(dir / "config.json", kQwen25_05B);
    const std::string gen = (dir / "generation_config.json").string();
    for (const auto& [key, value, message] :
         {std::tuple<const char*, json, std::string>{"top_p", 1.5, "'top_p' must be in (0, 1], got 1.5"},
          {"temperature", -1, "'temperature' must be >= 0, got -1"},
          {"repetition_penalty", 0, "'repetition_penalty' must be > 0, got 0"},
          {"min_p", 2, "'min_p' must be in [0, 1], got 2"},
          {"top_k", 2.5, "'top_k' must be an integer, got 2.5"},
          {"do_sample", "yes", "'do_sample' must be true or false, got \"yes\""}}) {
        test::write_json(dir / "generation_config.json", {{key, value}});
        const std::string err = error_of([&] { load_model_config(dir.path()); });
        EXPECT_NE(err.find(gen + ": " + message), std::string::npos) << err;
    }
}

TEST(ModelConfig, YarnAttentionFactorMatchesHfRopeCases) {
    // tests/data/models/rope_cases.json: configs with HF's attention_scaling (tools/make_golden_models.py).
    const auto path = std::filesystem::path(DSA_TEST_DATA) / "models" / "rope_cases.json";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not generated";
    std::ifstream f(path);
    const json cases = json::parse(f);
    ASSERT_FALSE(cases.empty());
    for (const json& rc : cases) {
        const ModelConfig c = parse_model_config(rc.at("config"), rc.at("name").get<std::string>());
        const double expected = rc.at("attention_scaling").get<double>();
        const double got = c.rope_scaling.type == RopeType::Yarn ? c.rope_scaling.attention_factor : 1.0;
        EXPECT_NEAR(got, expected, 1e-12) << rc.at("name");
    }
}

// ---- rejections
// --------------------------------------------------------------------------------------------

TEST(ModelConfig, RejectsUnknownArchitecture) {
    json j = kLlama31_8B;
    j["architectures"] = {"GPT2LMHeadModel"};
    const std::string err = error_of([&] { parse_model_config(j, "/m/config.json"); });
    EXPECT_NE(err.find("/m/config.json: unknown architecture 'GPT2LMHeadModel' (supported: LlamaForCausalLM, "
                       "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)"),
              std::string::npos)
        << err;
}

TEST(ModelConfig, RejectsMalformedJsonNamingTheFile) {
    TempDir dir;
    test::write_bytes(dir / "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": ");
    const std::string err = error_of([&] { load_model_config(dir.path()); });
    EXPECT_NE(err.find("config.json: malformed JSON"), std::string::npos) << err;
}

TEST(ModelConfig, RejectsMissingConfigJson) {
    TempDir dir;
    const std::string err = error_of([&] { load_model_config(dir.path()); });
    EXPECT_NE(err.find("no config.json in the model directory"), std::string::npos) << err;
}

TEST(ModelConfig, RejectsMissingOrIllTypedFields) {
    json j = kLlama31_8B;
    j.erase("hidden_size");
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("config.json: missing required field 'hidden_size'"),
              std::string::npos);
    j = kLlama31_8B;
    j["num_hidden_layers"] = "32";
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("'num_hidden_layers' must be an integer, got \"32\""),
              std::string::npos);
    j = kLlama31_8B;
    j["tie_word_embeddings"] = 1;
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("'tie_word_embeddings' must be true or false"),
              std::string::npos);
    j = kLlama31_8B;
    j["vocab_size"] = 0;
    EXPECT_NE(error_of([&] { parse_model_config(j, "config.json"); }).find("'vocab_size' must be positive"),
              std::string::npos);
    EXPECT_NE(
        error_of([&] { parse_model_config(json::array(), "config.json"); }).find("expected a JSON object"),
        std::string::npos);
}

TEST(ModelConfig, RejectsInconsistentHeads) {
    json j = kLlama31_8B;
    j["num_key_value_heads"] = 5;
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("num_attention_heads (32) must be a multiple of num_key_value_heads (5)"),
              std::string::npos);
    j = kLlama31_8B;
    j["num_attention_heads"] = 24;
    j["num_key_value_heads"] = 8;
    j["hidden_size"] = 4100;
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("hidden_size (4100) is not a multiple of num_attention_heads (24)"),
              std::string::npos);
}

TEST(ModelConfig, RejectsUnsupportedRopeAndFeatures) {
    json j = kLlama31_8B;
    j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("unsupported rope type 'dynamic' (supported: default, linear, llama3, yarn)"),
              std::string::npos);
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("rope_scaling rope type 'llama3' needs 'low_freq_factor'"),
              std::string::npos);
    j["rope_scaling"] = "linear";
    EXPECT_NE(
        error_of([&] { parse_model_config(j, "config.json"); }).find("'rope_scaling' must be an object"),
        std::string::npos);
    j = kLlama31_8B;
    j["partial_rotary_factor"] = 0.5;
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("partial_rotary_factor 0.5 is not supported"),
              std::string::npos);
    j = kMistral7B_v01;
    j["rope_theta"] = 0;
    EXPECT_NE(
        error_of([&] { parse_model_config(j, "config.json"); }).find("rope_theta must be positive, got 0"),
        std::string::npos);
    j = kLlama31_8B;
    j["hidden_act"] = "gelu";
    EXPECT_NE(
        error_of([&] { parse_model_config(j, "config.json"); }).find("hidden_act \"gelu\" is not supported"),
        std::string::npos);
    j = kLlama31_8B;
    j["quantization_config"] = {{"quant_method", "awq"}};
    EXPECT_NE(error_of([&] {
                  parse_model_config(j, "config.json");
              }).find("quantized checkpoints are not supported"),
              std::string::npos);
}

TEST(ModelConfig, ArchToString) {
    EXPECT_EQ(arch_to_string(Arch::Llama), "LlamaForCausalLM");
    EXPECT_EQ(arch_to_string(Arch::Mistral), "MistralForCausalLM");
    EXPECT_EQ(arch_to_string(Arch::Qwen2), "Qwen2ForCausalLM");
    EXPECT_EQ(arch_to_string(Arch::Qwen3), "Qwen3ForCausalLM");
}

}  // namespace
}  // namespace dsa
