// `dsa tokenize` end to end: ids against the HF golden files (tools/make_tokenizer_golden.py), the
// per-token listing, --no-bos, -f files, and one-line errors for bad flags, files and invalid UTF-8.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/cli_runner.h"

namespace {

using dsa::test::run_dsa;

const std::string kDefaultDir = std::string(DSA_SOURCE_DIR) + "/models/default";
const std::string kLlama2 = std::string(DSA_SHARED_DATA) + "/tokenizers/llama2-tokenizer.json";

// The golden case for `text` in tests/data/tokenizer/golden_NAME.json.
nlohmann::json golden_case(const std::string& name, const std::string& text) {
    const auto g = nlohmann::json::parse(
        dsa::test::read_text_file(std::string(DSA_TEST_DATA) + "/tokenizer/golden_" + name + ".json"));
    for (const auto& c : g["cases"])
        if (c.contains("text") && c["text"] == text) return c;
    ADD_FAILURE() << "no golden case for " << text;
    return {};
}

std::string ids_line(const nlohmann::json& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i].get<int>());
    return s + "]\n";
}

std::filesystem::path write_temp(const std::string& name, const std::string& bytes) {
    const auto p =
        std::filesystem::temp_directory_path() / ("dsa_tokenize_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

TEST(TokenizeCli, IdsMatchHfForTheDefaultModel) {
    const auto c = golden_case("default", "Hello world");
    auto r = run_dsa("tokenize -m " + kDefaultDir + " -p 'Hello world' --ids");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, ids_line(c["ids"]));
    r = run_dsa("tokenize -m " + kDefaultDir + " -p 'Hello world' --ids --no-bos");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, ids_line(c["ids_plain"]));
    EXPECT_EQ(r.err, "");
}

TEST(TokenizeCli, ListsOneTokenPerLine) {
    const auto r = run_dsa("tokenize --tokenizer " + kDefaultDir + "/tokenizer.json -p 'Hi there'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("     0 -> '<|bos|>'\n", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(" -> '\xC4\xA0there'\n"), std::string::npos) << r.out;  // 'Ġthere'
}

TEST(TokenizeCli, FileInputWithSpecialTokensAndControlCharacters) {
    // Llama 2's special tokens are normalized ones: "</s>" is found as "▁</s>", so after a space.
    const std::string text = "line one\r\n<s>\ttab </s>\n";
    const auto f = write_temp("in.txt", text);
    auto r = run_dsa("tokenize --tokenizer " + kLlama2 + " -f " + f.string() + " --ids");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("[1, ", 0), 0u) << r.out;
    r = run_dsa("tokenize --tokenizer " + kLlama2 + " -f " + f.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("    13 -> '<0x0A>'\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" 30004 -> '\\r'\n"), std::string::npos) << r.out;  // the piece "\r", escaped
    EXPECT_NE(r.out.find("     2 -> '</s>'\n"), std::string::npos) << r.out;
    // Every token on its own line: the listing has as many lines as --ids has ids.
    const auto ids = nlohmann::json::parse(
        run_dsa("tokenize --tokenizer " + kLlama2 + " -f " + f.string() + " --ids").out);
    EXPECT_EQ(static_cast<size_t>(std::count(r.out.begin(), r.out.end(), '\n')), ids.size());
    std::filesystem::remove(f);
}

TEST(TokenizeCli, EmptyPromptGivesOnlyTheSpecialTokens) {
    const auto r = run_dsa("tokenize -m " + kDefaultDir + " -p '' --ids");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "[0]\n");
}

TEST(TokenizeCli, InvalidUtf8FileIsAnErrorNamingFileAndOffset) {
    const auto f = write_temp("bad.txt", std::string("fine text\xC3(oops"));
    const auto r = run_dsa("tokenize -m " + kDefaultDir + " -f " + f.string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("dsa: error: -f " + f.string() + ": text is not valid UTF-8"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("byte offset 9 (byte 0xC3)"), std::string::npos) << r.err;
    std::filesystem::remove(f);
}

TEST(TokenizeCli, BadFlagsAndFiles) {
    auto r = run_dsa("tokenize -p hello");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("dsa: error: tokenize: give exactly one of -m DIR or --tokenizer FILE"),
              std::string::npos)
        << r.err;
    r = run_dsa("tokenize -m " + kDefaultDir);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("-p TEXT or -f FILE"), std::string::npos) << r.err;
    r = run_dsa("tokenize -m " + kDefaultDir + " -p a -f b");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
    r = run_dsa("tokenize -m /nonexistent/model -p a");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("-m /nonexistent/model: no such model directory"), std::string::npos) << r.err;
    r = run_dsa("tokenize -m " + kDefaultDir + " -f /nonexistent/prompt.txt");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("-f /nonexistent/prompt.txt: no such file"), std::string::npos) << r.err;
    const auto bad = write_temp("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
        "pre_tokenizer": {"type": "BertPreTokenizer"}})");
    r = run_dsa("tokenize --tokenizer " + bad.string() + " -p a");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(bad.string() + ": unsupported pre_tokenizer 'BertPreTokenizer'"), std::string::npos)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    std::filesystem::remove(bad);
}

}  // namespace
