// prefill()'s chunking against the Backend contract that a 1-token forward() is a decode step (attended
// through the sparse policy): no prefill chunk may be a single token unless the whole prompt is one.
// Batch 0 takes the backend's chunk. Also the default (throwing) implementations of the optional Backend
// operations.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "engine/generator.h"
#include "util/error.h"

namespace dsa {
namespace {

// Records the size of every forward() chunk.
class ChunkRecorder : public Backend {
public:
    ChunkRecorder() { model_.config.vocab_size = 4; }
    std::string name() const override { return "recorder"; }
    const Model& model() const override { return model_; }
    int context_capacity() const override { return 1 << 20; }
    void forward(Sequence& seq, std::span<const int> tokens, LogitsMode, std::span<float>) override {
        chunks.push_back(static_cast<int>(tokens.size()));
        seq.n_tokens += static_cast<int>(tokens.size());
    }
    void release(Sequence& seq) override { seq = Sequence{}; }
    std::vector<int> chunks;

private:
    Model model_;
};

std::vector<int> chunks_of(int n, int batch) {
    ChunkRecorder be;
    Sequence seq;
    std::vector<int> tokens(static_cast<size_t>(n), 2);
    std::vector<float> logits(4);  // [vocab]
    const int returned = prefill(be, seq, tokens, batch, logits, false);
    EXPECT_EQ(returned, static_cast<int>(be.chunks.size())) << n << " / " << batch;
    EXPECT_EQ(seq.n_tokens, n);
    EXPECT_EQ(std::accumulate(be.chunks.begin(), be.chunks.end(), 0), n);
    return be.chunks;
}

TEST(PrefillChunks, NeverASingleTokenChunkUnlessThePromptIsOne) {
    EXPECT_EQ(chunks_of(10, 4), (std::vector<int>{4, 4, 2}));
    EXPECT_EQ(chunks_of(8, 4), (std::vector<int>{4, 4}));
    // A 1-token remainder joins the last chunk.
    EXPECT_EQ(chunks_of(9, 4), (std::vector<int>{4, 5}));
    EXPECT_EQ(chunks_of(513, 512), (std::vector<int>{513}));
    EXPECT_EQ(chunks_of(1025, 512), (std::vector<int>{512, 513}));
    // Batch 1 runs pairs (an odd prompt ends with 3).
    EXPECT_EQ(chunks_of(4, 1), (std::vector<int>{2, 2}));
    EXPECT_EQ(chunks_of(5, 1), (std::vector<int>{2, 3}));
    EXPECT_EQ(chunks_of(3, 2), (std::vector<int>{3}));
    // The only single-token chunk: a single-token prompt (every policy attends its one token densely).
    EXPECT_EQ(chunks_of(1, 512), (std::vector<int>{1}));
    EXPECT_EQ(chunks_of(1, 1), (std::vector<int>{1}));
    EXPECT_TRUE(chunks_of(0, 4).empty());
    for (int batch : {1, 2, 3, 7, 16}) {
        for (int n = 2; n < 60; ++n) {
            for (int c : chunks_of(n, batch)) EXPECT_GE(c, 2) << n << " / " << batch;
        }
    }
}

// Batch 0 is the backend's own chunk (Backend::prefill_chunk: 512 unless the backend says otherwise).
TEST(PrefillChunks, BatchZeroTakesTheBackendsChunk) {
    EXPECT_EQ(chunks_of(1100, 0), (std::vector<int>{512, 512, 76}));
    class SixChunks : public ChunkRecorder {
        int prefill_chunk() const override { return 6; }
    } be;
    Sequence seq;
    std::vector<int> tokens(13, 2);
    std::vector<float> logits(4);
    prefill(be, seq, tokens, 0, logits, false);
    EXPECT_EQ(be.chunks, (std::vector<int>{6, 7}));
    EXPECT_EQ(prefill_batch(be, 0), 6);
    EXPECT_EQ(prefill_batch(be, 3), 3);
    EXPECT_THROW(prefill_batch(be, -1), Error);
}

TEST(BackendDefaults, OptionalOperationsThrowNamingTheBackend) {
    ChunkRecorder be;
    Sequence a, b;
    try {
        be.set_attention(AttentionPolicy{}, false);
        ADD_FAILURE() << "set_attention did not throw";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "the recorder backend cannot change its attention policy");
    }
    try {
        be.copy_sequence(a, b);
        ADD_FAILURE() << "copy_sequence did not throw";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "the recorder backend cannot copy sequences");
    }
}

}  // namespace
}  // namespace dsa
