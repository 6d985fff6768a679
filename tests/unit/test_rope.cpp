// RoPE tables against HF transformers' inv_freq and attention_scaling (tools/make_golden_models.py): the
// five test models, read through the config loader, and rope_cases.json, the settings of real
// checkpoints and yarn edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "model/config.h"
#include "model/rope.h"

namespace dsa {
namespace {

const std::string kModels = std::string(DSA_TEST_DATA) + "/models";

nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    EXPECT_TRUE(f.good()) << path;
    return nlohmann::json::parse(f);
}

// Both evaluate in fp32 step by step; only the pow may round differently, so allow a few ulp.
void expect_table_matches(const RopeTable& t, const nlohmann::json& ref_inv_freq, double ref_scaling,
                          const std::string& what) {
    ASSERT_EQ(t.inv_freq.size(), ref_inv_freq.size()) << what;
    for (size_t i = 0; i < t.inv_freq.size(); ++i) {
        const double ref = ref_inv_freq[i].get<double>();
        EXPECT_NEAR(t.inv_freq[i], ref, 4e-7 * std::abs(ref)) << what << " inv_freq[" << i << "]";
    }
    EXPECT_NEAR(t.attention_scaling, ref_scaling, 1e-6) << what;
}

TEST(Rope, MatchesHfForEveryTestModel) {
    for (const char* name : {"llama", "llama_tied", "mistral", "qwen2", "qwen3"}) {
        const std::string dir = kModels + "/" + name;
        const nlohmann::json golden = read_json(dir + "/golden.json");
        const RopeTable t = make_rope_table(load_model_config(dir));
        expect_table_matches(t, golden["inv_freq"], golden["attention_scaling"].get<double>(), name);
    }
}

TEST(Rope, MatchesHfForRealCheckpointSettingsAndYarnEdgeCases) {
    const nlohmann::json cases = read_json(kModels + "/rope_cases.json");
    ASSERT_GE(cases.size(), 6u);
    for (const auto& c : cases) {
        const std::string name = c["name"].get<std::string>();
        const RopeTable t = make_rope_table(parse_model_config(c["config"], name));
        expect_table_matches(t, c["inv_freq"], c["attention_scaling"].get<double>(), name);
    }
}

// The scaled variants really differ from plain RoPE where they should (guards against a table that
// ignores the scaling and still happens to pass on short prompts).
TEST(Rope, Llama3KeepsHighFrequenciesAndDividesLowOnes) {
    ModelConfig c;
    c.head_dim = 128;
    c.rope_theta = 500000.0;
    c.max_position_embeddings = 131072;
    const RopeTable plain = make_rope_table(c);
    c.rope_scaling.type = RopeType::Llama3;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
    const RopeTable scaled = make_rope_table(c);
    EXPECT_FLOAT_EQ(scaled.inv_freq[0], plain.inv_freq[0]);
    EXPECT_FLOAT_EQ(scaled.inv_freq[63], plain.inv_freq[63] / 8.0f);
    EXPECT_FLOAT_EQ(scaled.attention_scaling, 1.0f);
}

}  // namespace
}  // namespace dsa
