// The Tokenizer accessors on the three real tokenizers: sizes and ids as HF reports them
// (get_vocab_size(with_added_tokens=True), token_to_id), BOS/EOS resolution and special flags.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

using dsa::Tokenizer;

const std::string kShared = DSA_SHARED_DATA;

TEST(TokenizerApi, Llama2) {
    const Tokenizer t = Tokenizer::from_file(kShared + "/tokenizers/llama2-tokenizer.json");
    EXPECT_EQ(t.vocab_size(), 32000);
    EXPECT_EQ(t.bos_id(), 1);  // from the post-processor template "<s> $A"
    EXPECT_EQ(t.eos_id(), 2);  // no config: the special token named </s>
    EXPECT_EQ(t.piece_to_id("<s>"), 1);
    EXPECT_EQ(t.piece_to_id("\xE2\x96\x81Hello"), 15043);
    EXPECT_EQ(t.piece_to_id("<0x0A>"), 13);
    EXPECT_EQ(t.piece_to_id("no such piece"), -1);
    EXPECT_EQ(t.id_to_piece(1), "<s>");
    EXPECT_EQ(t.id_to_piece(15043), "\xE2\x96\x81Hello");
    EXPECT_EQ(t.id_to_piece(32000), "");
    EXPECT_TRUE(t.is_special(2));
    EXPECT_FALSE(t.is_special(15043));
}

TEST(TokenizerApi, Phi2AddedTokens) {
    const Tokenizer t = Tokenizer::from_file(kShared + "/tokenizers/gpt2-style-phi2-tokenizer.json");
    EXPECT_EQ(t.vocab_size(), 50295);  // 50257 + 38 added tokens
    EXPECT_EQ(t.bos_id(), -1);         // its post-processor adds nothing
    EXPECT_EQ(t.eos_id(), 50256);      // <|endoftext|>
    EXPECT_EQ(t.id_to_piece(50294), "\t\t");
    EXPECT_EQ(t.piece_to_id("\t\t"), 50294);
    EXPECT_FALSE(t.is_special(50294));
    EXPECT_TRUE(t.is_special(50256));
    EXPECT_EQ(t.encode("x"), t.encode("x", false));
}

TEST(TokenizerApi, DefaultModelDirectoryWithConfig) {
    const Tokenizer t = Tokenizer::from_model_dir(std::string(DSA_SOURCE_DIR) + "/models/default");
    EXPECT_EQ(t.vocab_size(), 8192);
    EXPECT_EQ(t.bos_id(), 0);
    EXPECT_EQ(t.eos_id(), 1);
    EXPECT_EQ(t.piece_to_id("<|pad|>"), 2);
    const std::vector<int> ids = t.encode("the end");
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 0);  // add_bos_token
    EXPECT_NE(ids.back(), 1);   // no add_eos_token
    EXPECT_EQ(t.decode(ids, true), "the end");
    EXPECT_EQ(t.decode(ids, false), "<|bos|>the end");
}

// Tokenizers are movable and usable from several threads at once (the word cache is shared).
TEST(TokenizerApi, ConcurrentEncodeGivesTheSameIds) {
    Tokenizer t = Tokenizer::from_file(std::string(DSA_SOURCE_DIR) + "/models/default/tokenizer.json");
    Tokenizer moved = std::move(t);
    std::string text;
    for (int i = 0; i < 200; ++i)
        text += "It was the best of times, it was the worst of times " + std::to_string(i) + ". ";
    const std::vector<int> expected = moved.encode(text);
    std::vector<std::vector<int>> got(4);
    std::vector<std::thread> threads;
    for (auto& g : got) threads.emplace_back([&] { g = moved.encode(text); });
    for (auto& th : threads) th.join();
    for (const auto& g : got) EXPECT_EQ(g, expected);
}

}  // namespace
