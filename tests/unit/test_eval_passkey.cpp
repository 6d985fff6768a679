// Passkey prompts and the answer checker: the template against tools/train_model.py (read from the script
// itself), the builder's length and fact position by searching the fact's ids in the prompt, the trial
// draw, the checker on synthetic continuations, and the trial runner's greedy continuation against HF's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "eval/book_text.h"
#include "eval/passkey.h"
#include "eval/passkey_prompt.h"
#include "eval/prompt_bos.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dsa {
namespace {

namespace fs = std::filesystem;

const fs::path kDefaultModel = fs::path(DSA_SOURCE_DIR) / "models" / "default";
const fs::path kBook = fs::path(DSA_SHARED_DATA) / "texts" / "pride-and-prejudice.txt";

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The value of `NAME = "..."` or `NAME = ("..." "...")` in a Python file: adjacent string literals
// concatenated, with the escapes the script uses (\n, \", \\).
std::string python_string_constant(const std::string& src, const std::string& name) {
    const size_t at = src.find("\n" + name + " = ");
    if (at == std::string::npos) return "<" + name + " not found>";
    size_t i = at + name.size() + 4;
    int parens = 0;
    std::string value;
    for (; i < src.size(); ++i) {
        const char c = src[i];
        if (c == '(') ++parens;
        if (c == ')') --parens;
        if (c == '\n' && parens == 0) break;
        if (c != '"') continue;
        for (++i; i < src.size() && src[i] != '"'; ++i) {
            if (src[i] == '\\') {
                const char e = src[++i];
                value += e == 'n' ? '\n' : e;
            } else {
                value += src[i];
            }
        }
    }
    return value;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// Position of the first occurrence of `needle` in `hay`, or -1.
int find_ids(const std::vector<int>& hay, const std::vector<int>& needle) {
    const auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
    return it == hay.end() ? -1 : static_cast<int>(it - hay.begin());
}

class PasskeyPromptTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tok_ = new Tokenizer(Tokenizer::from_model_dir(kDefaultModel));
        book_ = new std::vector<int>(tok_->encode(read_book_text(kBook, "--text"), false));
    }
    static void TearDownTestSuite() {
        delete tok_;
        delete book_;
    }
    static Tokenizer* tok_;
    static std::vector<int>* book_;
};
Tokenizer* PasskeyPromptTest::tok_ = nullptr;
std::vector<int>* PasskeyPromptTest::book_ = nullptr;

TEST(PasskeyTemplate, MatchesTheTrainingScript) {
    const std::string py = read_file(fs::path(DSA_SOURCE_DIR) / "tools" / "train_model.py");
    EXPECT_EQ(python_string_constant(py, "PASSKEY_INTRO"), kPasskeyIntro);
    EXPECT_EQ(python_string_constant(py, "PASSKEY_QUESTION"), kPasskeyQuestion);
    const std::string fact = python_string_constant(py, "PASSKEY_FACT");
    EXPECT_NE(fact.find("{key}"), std::string::npos) << fact;
    EXPECT_EQ(replace_all(fact, "{key}", "48213"), passkey_fact(48213));
    EXPECT_EQ(passkey_answer(48213), " 48213.");  // train_model.py: enc(" " + key + ".")
}

TEST_F(PasskeyPromptTest, LengthIsCtxAndFactSitsAtTheAskedDepth) {
    const PasskeyParts parts = encode_passkey_parts(*tok_);
    ASSERT_EQ(parts.bos, 0);  // <|bos|>, as train_model.py's literal [0]
    const int key = 73519;
    const std::vector<int> fact = tok_->encode(passkey_fact(key), false);
    const size_t offset = 1234;
    for (const int ctx : {100, 128, 333, 1000}) {
        for (const double depth : {0.0, 0.1, 0.25, 0.5, 0.77, 1.0}) {
            SCOPED_TRACE("ctx " + std::to_string(ctx) + " depth " + std::to_string(depth));
            const PasskeyPrompt p = build_passkey_prompt(parts, *tok_, key, *book_, offset, ctx, depth);
            ASSERT_EQ(static_cast<int>(p.tokens.size()), ctx);
            const int F =
                ctx - 1 - static_cast<int>(parts.intro.size() + fact.size() + parts.question.size());
            EXPECT_EQ(p.filler_tokens, F);
            // The fact's ids appear exactly where depth puts them: after round(depth * F) filler tokens.
            const int head = 1 + static_cast<int>(parts.intro.size());
            const int at = find_ids(p.tokens, fact);
            EXPECT_EQ(at, head + static_cast<int>(std::lround(depth * F)));
            EXPECT_EQ(at, p.fact_begin);
            EXPECT_EQ(p.fact_tokens, static_cast<int>(fact.size()));
            // BOS + intro first, the question last.
            EXPECT_EQ(p.tokens[0], 0);
            EXPECT_TRUE(std::equal(parts.intro.begin(), parts.intro.end(), p.tokens.begin() + 1));
            EXPECT_TRUE(std::equal(parts.question.rbegin(), parts.question.rend(), p.tokens.rbegin()));
            EXPECT_EQ(p.question_begin, ctx - static_cast<int>(parts.question.size()));
            // Around the fact: one contiguous run of book tokens from the offset.
            std::vector<int> filler(p.tokens.begin() + head, p.tokens.begin() + at);
            filler.insert(filler.end(), p.tokens.begin() + at + p.fact_tokens,
                          p.tokens.begin() + p.question_begin);
            ASSERT_EQ(static_cast<int>(filler.size()), F);
            EXPECT_TRUE(std::equal(filler.begin(), filler.end(), book_->begin() + offset));
        }
    }
}

TEST_F(PasskeyPromptTest, DecodedPromptReadsAsTheTemplate) {
    const PasskeyParts parts = encode_passkey_parts(*tok_);
    const PasskeyPrompt p = build_passkey_prompt(parts, *tok_, 40417, *book_, 0, 400, 0.5);
    const std::string text = tok_->decode(p.tokens, true);
    EXPECT_EQ(text.rfind(std::string(kPasskeyIntro), 0), 0u) << text;
    EXPECT_NE(text.find("The pass key is 40417. Remember it. 40417 is the pass key."), std::string::npos);
    EXPECT_TRUE(text.ends_with(kPasskeyQuestion)) << text;
}

TEST_F(PasskeyPromptTest, ShortFillerWrapsAround) {
    const PasskeyParts parts = encode_passkey_parts(*tok_);
    const std::vector<int> filler = {500, 501, 502, 503, 504, 505, 506};
    const std::vector<int> fact = tok_->encode(passkey_fact(11111), false);
    const PasskeyPrompt p = build_passkey_prompt(parts, fact, 11111, filler, 5, 120, 0.0);
    const int head = 1 + static_cast<int>(parts.intro.size()) + static_cast<int>(fact.size());
    for (int i = 0; i < p.filler_tokens; ++i)
        ASSERT_EQ(p.tokens[static_cast<size_t>(head + i)], 500 + (5 + i) % 7) << "filler token " << i;
}

TEST_F(PasskeyPromptTest, ContextWithoutRoomForFillerIsAnError) {
    const PasskeyParts parts = encode_passkey_parts(*tok_);
    const std::vector<int> fact = tok_->encode(passkey_fact(12345), false);
    const int overhead = passkey_overhead(parts, static_cast<int>(fact.size()));
    EXPECT_EQ(build_passkey_prompt(parts, fact, 12345, *book_, 0, overhead + 1, 0.5).filler_tokens, 1);
    try {
        build_passkey_prompt(parts, fact, 12345, *book_, 0, overhead, 0.5);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--ctx " + std::to_string(overhead)), std::string::npos)
            << e.what();
    }
}

TEST(PromptBos, OnlyTheBosTheTokenizerAdds) {
    EXPECT_EQ(prompt_bos(Tokenizer::from_model_dir(kDefaultModel)), 0);  // add_bos_token: true
    // A <|bos|> token exists but neither a post-processor nor tokenizer_config.json adds it.
    const fs::path qwen = fs::path(DSA_TEST_DATA) / "models" / "qwen2";
    EXPECT_EQ(prompt_bos(Tokenizer::from_model_dir(qwen)), -1);
    const fs::path llama2 = fs::path(DSA_SHARED_DATA) / "tokenizers" / "llama2-tokenizer.json";
    const Tokenizer l2 = Tokenizer::from_file(llama2);
    EXPECT_EQ(prompt_bos(l2), l2.bos_id());
    EXPECT_EQ(l2.bos_id(), 1);  // <s>, put first by the TemplateProcessing post-processor
}

TEST(PasskeyTrials, SeededDistinctFiveDigitKeys) {
    const std::vector<PasskeyTrial> a = draw_passkey_trials(7, 200, 5000);
    const std::vector<PasskeyTrial> b = draw_passkey_trials(7, 200, 5000);
    const std::vector<PasskeyTrial> c = draw_passkey_trials(8, 200, 5000);
    ASSERT_EQ(a.size(), 200u);
    std::set<int> keys;
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_GE(a[i].key, 10000);
        EXPECT_LE(a[i].key, 99999);
        EXPECT_LT(a[i].offset, 5000u);
        EXPECT_EQ(a[i].key, b[i].key);
        EXPECT_EQ(a[i].offset, b[i].offset);
        keys.insert(a[i].key);
    }
    EXPECT_EQ(keys.size(), a.size()) << "keys must differ between trials";
    int same = 0;
    for (size_t i = 0; i < a.size(); ++i) same += a[i].key == c[i].key;
    EXPECT_LT(same, 5) << "another seed must give other keys";
    // Fewer trials are a prefix of more: adding trials keeps the earlier ones.
    const std::vector<PasskeyTrial> d = draw_passkey_trials(7, 3, 5000);
    for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(d[i].key, a[i].key);
    EXPECT_THROW(draw_passkey_trials(7, 0, 5000), Error);
}

TEST(PasskeyChecker, ParsesTheFirstDigitRun) {
    EXPECT_EQ(first_digit_run(" 12345."), "12345");
    EXPECT_EQ(first_digit_run("abc"), "");
    EXPECT_EQ(first_digit_run(""), "");
    EXPECT_EQ(first_digit_run("x 12 34"), "12");
    EXPECT_EQ(first_digit_run("9"), "9");

    const int key = 12345;
    EXPECT_TRUE(passkey_correct(" 12345.", key));
    EXPECT_TRUE(passkey_correct("12345", key));
    EXPECT_TRUE(passkey_correct(" the key is 12345", key));
    EXPECT_TRUE(passkey_correct(" 12345. Remember it. 99999", key));
    EXPECT_TRUE(passkey_correct("\n12345\n", key));
    EXPECT_FALSE(passkey_correct(" 1234", key));
    EXPECT_FALSE(passkey_correct(" 123456", key));
    EXPECT_FALSE(passkey_correct(" 012345", key));
    EXPECT_FALSE(passkey_correct("", key));
    EXPECT_FALSE(passkey_correct(" 1234 5", key));
    EXPECT_FALSE(passkey_correct(" 54321", key));
    EXPECT_FALSE(passkey_correct(" 99 12345", key));
    EXPECT_FALSE(passkey_correct(" twelve thousand", key));
}

// Wraps a real backend and records the size of every forward() chunk.
class RecordingBackend : public Backend {
public:
    explicit RecordingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
    std::string name() const override { return inner_->name(); }
    const Model& model() const override { return inner_->model(); }
    int context_capacity() const override { return inner_->context_capacity(); }
    void forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                 std::span<float> logits) override {
        chunks.push_back(static_cast<int>(tokens.size()));
        inner_->forward(seq, tokens, mode, logits);
    }
    void release(Sequence& seq) override { inner_->release(seq); }
    ForwardStats last_stats() const override { return inner_->last_stats(); }
    std::vector<int> chunks;

private:
    std::unique_ptr<Backend> inner_;
};

// tests/data/models/llama/golden.json: a 45-token prompt and HF's 8 greedy tokens after it
// (tools/make_golden_models.py). The trial runner must continue the same way, with the question part of
// the prompt run as single-token decode steps.
TEST(PasskeyAnswer, GreedyContinuationMatchesHf) {
    const fs::path dir = fs::path(DSA_TEST_DATA) / "models" / "llama";
    const nlohmann::json golden = nlohmann::json::parse(read_file(dir / "golden.json"));
    const std::vector<int> ids = golden["ids"].get<std::vector<int>>();
    const int prompt_len = golden["prompt_len"].get<int>();
    const Model model = load_model(dir);
    BackendOptions opts;
    opts.context = 64;
    opts.threads = 1;
    RecordingBackend backend(make_backend("cpu", model, opts));

    PasskeyPrompt prompt;
    prompt.tokens.assign(ids.begin(), ids.begin() + prompt_len);
    prompt.question_begin = prompt_len - 5;
    const int n_predict = static_cast<int>(ids.size()) - prompt_len;
    const PasskeyAnswer ans = answer_passkey(backend, prompt, n_predict, {}, 16);
    EXPECT_EQ(ans.ids, std::vector<int>(ids.begin() + prompt_len, ids.end()));
    // Prefill of 40 tokens in chunks of 16, then 5 question steps and n_predict - 1 generated steps.
    std::vector<int> expected = {16, 16, 8};
    expected.insert(expected.end(), 5 + n_predict - 1, 1);
    EXPECT_EQ(backend.chunks, expected);
    EXPECT_EQ(ans.decode_steps, 5 + n_predict - 1);
    // Full attention attends every cached token: positions 41..52 inclusive, mean over the steps.
    double want = 0;
    for (int n = prompt_len - 4; n <= prompt_len + n_predict - 1; ++n) want += n;
    EXPECT_DOUBLE_EQ(ans.attended_sum, want);

    // The first EOS ends the answer without emitting it.
    backend.chunks.clear();
    const int stop_id = ids[static_cast<size_t>(prompt_len) + 3];
    const PasskeyAnswer cut = answer_passkey(backend, prompt, n_predict, std::vector<int>{stop_id}, 16);
    EXPECT_EQ(cut.ids, std::vector<int>(ids.begin() + prompt_len, ids.begin() + prompt_len + 3));
}

TEST(BookText, StripsGutenbergBoilerplateAndCrlf) {
    const std::string raw =
        "\xEF\xBB\xBFThe Project Gutenberg EBook of X\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X "
        "***\r\n"
        "\r\n  Chapter 1\r\nIt is a truth.\r\n\r\n*** END OF THIS PROJECT GUTENBERG EBOOK X "
        "***\r\nlicence\r\n";
    EXPECT_EQ(clean_book_text(raw), "Chapter 1\nIt is a truth.\n");
    EXPECT_EQ(clean_book_text("plain\r\ntext  \n\n"), "plain\ntext\n");
    EXPECT_EQ(
        clean_book_text("***START OF THE PROJECT GUTENBERG EBOOK\nbody\n***END OF THE PROJECT GUTENBERG"),
        "body\n");
    EXPECT_EQ(clean_book_text(" \r\n "), "");

    const std::string book = read_book_text(kBook, "--text");
    EXPECT_EQ(book.find('\r'), std::string::npos);
    EXPECT_EQ(book.find("PROJECT GUTENBERG"), std::string::npos);
    EXPECT_EQ(book.rfind("Produced by", 0), 0u) << book.substr(0, 80);
    EXPECT_NE(book.find("It is a truth universally acknowledged"), std::string::npos);
    EXPECT_TRUE(book.ends_with("\n"));
    EXPECT_THROW(read_book_text(fs::path(DSA_TEST_DATA) / "no-such-book.txt", "--text"), Error);
}

}  // namespace
}  // namespace dsa
