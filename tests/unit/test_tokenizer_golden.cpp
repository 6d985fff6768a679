// Ids and decodes identical to HF tokenizers 0.23 (golden files from tools/make_tokenizer_golden.py) for
// the shared Llama 2 (SentencePiece-style BPE, byte fallback) and Phi-2 (GPT-2 byte-level, added tokens)
// tokenizers, the bundled default tokenizer, and tokenizer.json variants covering the other components.
#include <gtest/gtest.h>

#include "test_tokenizer_util.h"
#include "tokenizer/tokenizer.h"

namespace {

using dsa::Tokenizer;
using nlohmann::json;

std::vector<int> ids_of(const json& j) {
    return j.get<std::vector<int>>();
}

void check_case(const Tokenizer& tok, const json& c, const std::string& text) {
    SCOPED_TRACE("text: " + dsa::test::short_label(text));
    const std::vector<int> ids = tok.encode(text, true);
    EXPECT_EQ(ids, ids_of(c["ids"]));
    EXPECT_EQ(tok.encode(text, false), ids_of(c["ids_plain"]));
    const std::string decoded = dsa::test::expected_decode(c["decoded"], text);
    EXPECT_EQ(tok.decode(ids, false), decoded);
    EXPECT_EQ(tok.decode(ids, true),
              c.contains("decoded_skip") ? dsa::test::expected_decode(c["decoded_skip"], text) : decoded);
}

void check_golden_file(const std::string& name) {
    const json g = dsa::test::read_golden("golden_" + name + ".json");
    const Tokenizer tok =
        Tokenizer::from_file(dsa::test::resolve_data_path(g["tokenizer"].get<std::string>()));
    ASSERT_GE(g["cases"].size(), 30u);
    for (const auto& c : g["cases"]) check_case(tok, c, dsa::test::case_text(c));
    for (const auto& d : g["decode"]) {
        const std::vector<int> ids = ids_of(d["ids"]);
        SCOPED_TRACE("decode of " + d["ids"].dump());
        EXPECT_EQ(tok.decode(ids, false), d["text"].get<std::string>());
        EXPECT_EQ(tok.decode(ids, true), d["text_skip"].get<std::string>());
    }
}

TEST(TokenizerGolden, Llama2SentencePieceBpe) {
    check_golden_file("llama2");
}

TEST(TokenizerGolden, Phi2ByteLevelWithAddedTokens) {
    check_golden_file("phi2");
}

TEST(TokenizerGolden, BundledDefaultByteLevel) {
    check_golden_file("default");
}

// Each variant: a base tokenizer.json with sections replaced, model fields replaced and added tokens
// appended, built exactly as the golden script built it for HF.
TEST(TokenizerGolden, ComponentVariants) {
    const json g = dsa::test::read_golden("components.json");
    const auto& strings = g["strings"];
    ASSERT_GE(g["variants"].size(), 30u);
    for (const auto& v : g["variants"]) {
        SCOPED_TRACE("variant " + v["name"].get<std::string>());
        json j =
            json::parse(dsa::test::read_bytes(dsa::test::resolve_data_path(v["base"].get<std::string>())));
        if (v.contains("set"))
            for (const auto& [k, val] : v["set"].items()) j[k] = val;
        if (v.contains("model_set"))
            for (const auto& [k, val] : v["model_set"].items()) j["model"][k] = val;
        if (v.contains("added_tokens_append"))
            for (const auto& t : v["added_tokens_append"]) j["added_tokens"].push_back(t);
        const Tokenizer tok = Tokenizer::from_json_text(j.dump(), {}, v["name"].get<std::string>());
        ASSERT_EQ(v["cases"].size(), strings.size());
        for (size_t i = 0; i < strings.size(); ++i)
            check_case(tok, v["cases"][i], strings[i].get<std::string>());
    }
}

}  // namespace
