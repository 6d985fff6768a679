// StreamDecoder: what it prints, piece by piece, adds up to HF's decode of the whole sequence; it never
// prints half a character (no premature U+FFFD) and spaces the first piece as HF decode does.
#include <gtest/gtest.h>

#include <span>

#include "test_tokenizer_util.h"
#include "tokenizer/tokenizer.h"

namespace {

using dsa::StreamDecoder;
using dsa::Tokenizer;

// Streams `ids` after `context`; returns the concatenated output and checks every piece is valid UTF-8.
std::string stream(const Tokenizer& tok, std::span<const int> context, std::span<const int> ids) {
    StreamDecoder sd(tok, context);
    std::string out;
    for (const int id : ids) out += sd.push(id);
    out += sd.flush();
    return out;
}

size_t count_fffd(const std::string& s) {
    size_t n = 0;
    for (size_t i = s.find("\xEF\xBF\xBD"); i != std::string::npos; i = s.find("\xEF\xBF\xBD", i + 3)) ++n;
    return n;
}

void check_golden_streams(const std::string& name) {
    const auto g = dsa::test::read_golden("golden_" + name + ".json");
    const Tokenizer tok =
        Tokenizer::from_file(dsa::test::resolve_data_path(g["tokenizer"].get<std::string>()));
    for (const auto& c : g["cases"]) {
        const std::string text = dsa::test::case_text(c);
        SCOPED_TRACE(name + ": " + dsa::test::short_label(text));
        const std::vector<int> ids = c["ids"].get<std::vector<int>>();
        const std::string whole = tok.decode(ids, true);
        const std::string streamed = stream(tok, {}, ids);
        EXPECT_EQ(streamed, whole);
        EXPECT_EQ(count_fffd(streamed), count_fffd(whole));
        // Streaming the second half after the first half as context adds what the whole decode adds.
        const size_t half = ids.size() / 2;
        const std::span<const int> all(ids);
        const std::string head = tok.decode(all.first(half), true);
        if (whole.compare(0, head.size(), head) == 0) {
            EXPECT_EQ(stream(tok, all.first(half), all.subspan(half)), whole.substr(head.size()));
        }
    }
    // Random id sequences (partial byte runs, stray special tokens) add up to the whole decode too.
    for (const auto& d : g["decode"]) {
        const std::vector<int> ids = d["ids"].get<std::vector<int>>();
        EXPECT_EQ(stream(tok, {}, ids), d["text_skip"].get<std::string>()) << d["ids"].dump();
    }
}

TEST(TokenizerStream, AddsUpToDecodeLlama2) {
    check_golden_streams("llama2");
}
TEST(TokenizerStream, AddsUpToDecodePhi2) {
    check_golden_streams("phi2");
}
TEST(TokenizerStream, AddsUpToDecodeDefault) {
    check_golden_streams("default");
}

Tokenizer llama2() {
    return Tokenizer::from_file(std::string(DSA_SHARED_DATA) + "/tokenizers/llama2-tokenizer.json");
}

// SentencePiece style: the first piece loses its leading space (HF's Strip decoder), later ones keep it,
// and after a prompt the first generated word is spaced.
TEST(TokenizerStream, MetaspaceLeadingSpace) {
    const Tokenizer tok = llama2();
    const int hello = tok.piece_to_id("\xE2\x96\x81Hello"), world = tok.piece_to_id("\xE2\x96\x81world");
    ASSERT_GE(hello, 0);
    ASSERT_GE(world, 0);
    StreamDecoder sd(tok);
    EXPECT_EQ(sd.push(hello), "Hello");
    EXPECT_EQ(sd.push(world), " world");
    const std::vector<int> prompt = tok.encode("Say");
    StreamDecoder after(tok, prompt);
    EXPECT_EQ(after.push(world), " world");
}

// A character spelled as byte-fallback tokens is held back until its last byte arrives.
TEST(TokenizerStream, ByteFallbackRunIsHeldUntilComplete) {
    const Tokenizer tok = llama2();
    const std::vector<int> ids = tok.encode("\xF0\x9F\xA6\x9C!", false);  // U+1F99C, not in the vocabulary
    ASSERT_EQ(ids.size(), 6u);  // "▁" then <0xF0> <0x9F> <0xA6> <0x9C> then "!"
    StreamDecoder sd(tok);
    std::vector<std::string> out;
    for (const int id : ids) out.push_back(sd.push(id));
    EXPECT_EQ(out, (std::vector<std::string>{"", "", "", "", "\xF0\x9F\xA6\x9C", "!"}));
    EXPECT_EQ(sd.flush(), "");
}

// A byte-level token sequence that ends inside a character is released by flush() as U+FFFD, like HF.
TEST(TokenizerStream, FlushReleasesAnIncompleteCharacter) {
    const Tokenizer tok =
        Tokenizer::from_file(std::string(DSA_SOURCE_DIR) + "/models/default/tokenizer.json");
    const int e2 = tok.piece_to_id("\xC3\xA2");  // 'â' stands for byte 0xE2
    ASSERT_GE(e2, 0);
    StreamDecoder sd(tok);
    EXPECT_EQ(sd.push(tok.piece_to_id("a")), "a");
    EXPECT_EQ(sd.push(e2), "");
    EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
}

}  // namespace
