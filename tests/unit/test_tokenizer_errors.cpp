// Bad input gives one dsa::Error naming the file and the problem: malformed JSON, no model section,
// unsupported components, broken vocab/merges, bad tokenizer_config.json, invalid UTF-8 text.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_tokenizer_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

using dsa::Tokenizer;
using nlohmann::json;

// A tiny valid byte-level-free BPE: characters a, b and the merge "a b".
json tiny() {
    return json::parse(R"({"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
        "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})");
}

// The message of the dsa::Error that building a tokenizer from `text` throws ("" if none).
std::string load_error(const std::string& text, const std::string& config = {}) {
    try {
        Tokenizer::from_json_text(text, config, "my/tokenizer.json");
    } catch (const dsa::Error& e) {
        return e.what();
    }
    return {};
}

#define EXPECT_ERROR_HAS(message, part) \
    EXPECT_NE(std::string(message).find(part), std::string::npos) << (message)

TEST(TokenizerErrors, TinyTokenizerLoadsAndMerges) {
    const Tokenizer t = Tokenizer::from_json_text(tiny().dump());
    EXPECT_EQ(t.encode("abab"), (std::vector<int>{2, 2}));
    EXPECT_EQ(t.encode("ba"), (std::vector<int>{1, 0}));
    EXPECT_EQ(t.vocab_size(), 3);
    EXPECT_EQ(t.bos_id(), -1);
    EXPECT_EQ(t.decode(std::vector<int>{2, 1}), "ab b");  // no decoder: pieces joined by spaces, as HF
}

TEST(TokenizerErrors, MalformedJson) {
    const std::string e = load_error("{\"model\": {");
    EXPECT_ERROR_HAS(e, "my/tokenizer.json");
    EXPECT_ERROR_HAS(e, "not valid JSON");
    EXPECT_ERROR_HAS(load_error("[1, 2]"), "expected a JSON object");
    EXPECT_ERROR_HAS(load_error(""), "not valid JSON");
}

TEST(TokenizerErrors, MissingModel) {
    json j = tiny();
    j.erase("model");
    EXPECT_ERROR_HAS(load_error(j.dump()), "no 'model' section");
    j["model"] = nullptr;
    EXPECT_ERROR_HAS(load_error(j.dump()), "no 'model' section");
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
    const std::pair<const char*, json> cases[] = {
        {"normalizer", json{{"type", "BertNormalizer"}}},
        {"pre_tokenizer", json{{"type", "BertPreTokenizer"}}},
        {"decoder", json{{"type", "WordPiece"}}},
        {"post_processor", json{{"type", "RobertaProcessing"}}},
    };
    for (const auto& [section, spec] : cases) {
        json j = tiny();
        j[section] = spec;
        const std::string e = load_error(j.dump());
        EXPECT_ERROR_HAS(
            e, std::string("unsupported ") + section + " '" + spec["type"].get<std::string>() + "'");
        EXPECT_ERROR_HAS(e, "my/tokenizer.json");
    }
    json nested = tiny();
    nested["pre_tokenizer"] =
        json::parse(R"({"type": "Sequence", "pretokenizers": [{"type": "UnicodeScripts"}]})");
    EXPECT_ERROR_HAS(load_error(nested.dump()), "unsupported pre_tokenizer 'UnicodeScripts'");
    json unigram = tiny();
    unigram["model"] = json::parse(R"({"type": "Unigram", "vocab": [["a", 0.0]]})");
    EXPECT_ERROR_HAS(load_error(unigram.dump()), "unsupported model 'Unigram'");
    json dropout = tiny();
    dropout["model"]["dropout"] = 0.1;
    EXPECT_ERROR_HAS(load_error(dropout.dump()), "dropout is not supported");
    json prefix = tiny();
    prefix["model"]["continuing_subword_prefix"] = "##";
    EXPECT_ERROR_HAS(load_error(prefix.dump()), "continuing_subword_prefix is not supported");
}

TEST(TokenizerErrors, BrokenModelAndComponentFields) {
    json j = tiny();
    j["model"]["merges"] = json::array({"a c"});
    EXPECT_ERROR_HAS(load_error(j.dump()), "merge 'a c' uses a token that is not in the vocabulary");
    j["model"]["merges"] = json::array({"abc"});
    EXPECT_ERROR_HAS(load_error(j.dump()), "two tokens separated by one space");
    j["model"]["merges"] = json::array({json::array({"a", "b"})});
    EXPECT_EQ(load_error(j.dump()), "");  // the ["a", "b"] form is fine
    j["model"]["vocab"]["z"] = -4;
    EXPECT_ERROR_HAS(load_error(j.dump()), "id of token 'z'");

    json split = tiny();
    split["pre_tokenizer"] =
        json::parse(R"({"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"})");
    EXPECT_ERROR_HAS(load_error(split.dump()), "invalid regex '(a'");
    split["pre_tokenizer"]["pattern"] = json::parse(R"({"Regex": "a"})");
    split["pre_tokenizer"]["behavior"] = "Sideways";
    EXPECT_ERROR_HAS(load_error(split.dump()), "unknown split behavior 'Sideways'");
    json meta = tiny();
    meta["pre_tokenizer"] =
        json::parse(R"({"type": "Metaspace", "replacement": "ab", "prepend_scheme": "always"})");
    EXPECT_ERROR_HAS(load_error(meta.dump()), "'replacement' must be a single character");
    json strip = tiny();
    strip["normalizer"] = json::parse(R"({"type": "Strip", "strip_left": "yes"})");
    EXPECT_ERROR_HAS(load_error(strip.dump()), "'strip_left' must be true or false");
}

TEST(TokenizerErrors, UnkTokenMissingFromVocabularyOnlyWhenNeeded) {
    json j = tiny();
    j["model"]["unk_token"] = "<unk>";
    const Tokenizer t = Tokenizer::from_json_text(j.dump());  // HF also only fails when an unk is needed
    EXPECT_EQ(t.encode("ab"), (std::vector<int>{2}));
    EXPECT_THROW(t.encode("abc"), dsa::Error);
}

TEST(TokenizerErrors, TokenizerConfig) {
    EXPECT_ERROR_HAS(load_error(tiny().dump(), "{nope"), "tokenizer_config.json is not valid JSON");
    EXPECT_ERROR_HAS(load_error(tiny().dump(), R"({"bos_token": "<s>"})"),
                     "bos_token '<s>' is not in the vocabulary");
    EXPECT_ERROR_HAS(load_error(tiny().dump(), R"({"add_eos_token": true})"),
                     "add_eos_token is true but there is no eos_token");
    const Tokenizer t = Tokenizer::from_json_text(tiny().dump(),
                                                  R"({"bos_token": {"content": "b"}, "eos_token": "a",
                                                      "add_bos_token": true, "add_eos_token": true})");
    EXPECT_EQ(t.bos_id(), 1);
    EXPECT_EQ(t.eos_id(), 0);
    EXPECT_EQ(t.encode("ab"), (std::vector<int>{1, 2, 0}));
    EXPECT_EQ(t.encode("ab", false), (std::vector<int>{2}));
}

TEST(TokenizerErrors, MissingFilesAndDirectories) {
    try {
        Tokenizer::from_file("/nonexistent/tokenizer.json");
        ADD_FAILURE() << "no error";
    } catch (const dsa::Error& e) {
        EXPECT_ERROR_HAS(e.what(), "/nonexistent/tokenizer.json: cannot open");
    }
    EXPECT_THROW(Tokenizer::from_model_dir("/nonexistent"), dsa::Error);
    EXPECT_THROW(Tokenizer::from_model_dir(DSA_TEST_DATA), dsa::Error);  // a directory without tokenizer.json
}

// Documented behaviour: invalid UTF-8 is an error naming the first bad byte's offset; nothing is encoded.
TEST(TokenizerErrors, InvalidUtf8InputNamesTheOffset) {
    const Tokenizer t = Tokenizer::from_file(std::string(DSA_SOURCE_DIR) + "/models/default/tokenizer.json");
    const std::pair<std::string, size_t> cases[] = {
        {std::string("abc\xFF"), 3},             // never a UTF-8 byte
        {std::string("a\x80"), 1},               // lone continuation byte
        {std::string("ab\xC3"), 2},              // truncated at the end
        {std::string("\xC0\x80"), 0},            // overlong NUL
        {std::string("x\xED\xA0\x80y"), 1},      // UTF-16 surrogate
        {std::string("xy\xF4\x90\x80\x80"), 2},  // above U+10FFFF
        {std::string("\xC3\xA9\xE2\x82z"), 2},   // truncated in the middle
    };
    for (const auto& [text, offset] : cases) {
        try {
            t.encode(text);
            ADD_FAILURE() << "no error for offset " << offset;
        } catch (const dsa::Error& e) {
            EXPECT_ERROR_HAS(e.what(), "not valid UTF-8");
            EXPECT_ERROR_HAS(e.what(), "byte offset " + std::to_string(offset) + " ");
        }
    }
}

}  // namespace
