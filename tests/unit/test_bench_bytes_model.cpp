// The bench's bytes model against counts written out by hand from the tiny shape's config (4 layers,
// hidden 64, intermediate 128, 4 query / 2 KV heads, head_dim 16, vocab 384, bf16 weights).
#include <gtest/gtest.h>

#include "bench/bytes_model.h"
#include "model/random_weights.h"

namespace dsa {
namespace {

const Model& tiny_model() {
    static const Model m = make_random_model(std::string(DSA_TEST_DATA) + "/shapes/tiny-llama.json");
    return m;
}

// Per layer: 2 norms [64], wq [64][64], wk and wv [32][64], wo [64][64], gate and up [128][64], down
// [64][128]; then the final norm [64] and the LM head [384][64]; 2 bytes each.
constexpr double kLayerElems = 2 * 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64;
constexpr double kForwardWeights = 2 * (4 * kLayerElems + 64 + 384 * 64);
constexpr double kEmbedRow = 2 * 64;
// K and V of one token: 4 layers x 2 KV heads x 16 dims x 2, fp32.
constexpr double kKvTokenF32 = 4 * 2 * 16 * 2 * 4;

AttentionPolicy policy(PolicyKind kind, int page_size) {
    AttentionPolicy p;
    p.kind = kind;
    p.page_size = page_size;
    p.dense_layers = 2;
    return p;
}

TEST(BenchBytesModel, WeightsAreEveryTensorButTheEmbeddingTable) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Full, 16));
    EXPECT_DOUBLE_EQ(m.weight_bytes_per_forward(), kForwardWeights);
    EXPECT_DOUBLE_EQ(m.kv_bytes_per_token(), kKvTokenF32);
}

TEST(BenchBytesModel, FullDecodeStepReadsEveryCachedToken) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Full, 16));
    const TrafficBytes b = m.decode_step(100, 100);
    EXPECT_DOUBLE_EQ(b.weights, kForwardWeights + kEmbedRow);
    EXPECT_DOUBLE_EQ(b.kv, 100 * kKvTokenF32 + kKvTokenF32);  // read 100 tokens, append one
    EXPECT_DOUBLE_EQ(b.meta, 0);
    EXPECT_DOUBLE_EQ(b.total(), b.weights + b.kv + b.meta);
}

TEST(BenchBytesModel, BatchedStepReadsWeightsOnceAndEachSequencesCache) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Quest, 16));
    const TrafficBytes one = m.decode_step(100, 60), four = m.decode_step(100, 60, 4);
    EXPECT_DOUBLE_EQ(four.weights, kForwardWeights + 4 * kEmbedRow);
    EXPECT_DOUBLE_EQ(four.kv, 4 * one.kv);
    EXPECT_DOUBLE_EQ(four.meta, 4 * one.meta);
}

TEST(BenchBytesModel, KvDtypeScalesTheCache) {
    const BytesModel m(tiny_model(), DType::BF16, DType::BF16, policy(PolicyKind::Full, 16));
    EXPECT_DOUBLE_EQ(m.decode_step(10, 10).kv, 11 * kKvTokenF32 / 2);
}

TEST(BenchBytesModel, QuestReadsBoundsOfTheCompetingPagesInSparseLayers) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Quest, 16));
    // 100 tokens: 7 pages, 6 complete ones compete; kmin + kmax [16] fp32 per page, 2 sparse layers x 2
    // heads.
    const TrafficBytes b = m.decode_step(100, 60);
    EXPECT_DOUBLE_EQ(b.meta, 6 * 2 * 16 * 4 * 2 * 2);
    EXPECT_DOUBLE_EQ(b.kv, 60 * kKvTokenF32 + kKvTokenF32);
    // 96 tokens: 6 pages, the last one is the current page and does not compete.
    EXPECT_DOUBLE_EQ(m.decode_step(96, 60).meta, 5 * 2 * 16 * 4 * 2 * 2);
    // A step that attended everything was dense: nothing was selected.
    EXPECT_DOUBLE_EQ(m.decode_step(100, 100).meta, 0);
}

TEST(BenchBytesModel, Bf16QuestBoundsHalveTheSelectionReads) {
    // The CUDA cache: bf16 K/V and bf16 kmin/kmax; 100 tokens, 6 competing pages, 2 sparse layers x 2 heads.
    const BytesModel quest(tiny_model(), DType::BF16, DType::BF16, policy(PolicyKind::Quest, 16));
    EXPECT_DOUBLE_EQ(quest.decode_step(100, 60).meta, 6 * 2 * 16 * 2 * 2 * 2);
    // NSA's ksum and count stay fp32 and int32 whatever the bounds' dtype.
    const BytesModel nsa(tiny_model(), DType::BF16, DType::BF16, policy(PolicyKind::Nsa, 64));
    EXPECT_DOUBLE_EQ(nsa.decode_step(300, 200).meta, 4 * (16 * 4 + 4) * 2 * 2);
}

TEST(BenchBytesModel, NsaReadsMeanKeysAndCounts) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Nsa, 64));
    // 300 tokens: 5 pages of 64, 4 compete; ksum [16] fp32 + an int32 count each.
    EXPECT_DOUBLE_EQ(m.decode_step(300, 200).meta, 4 * (16 * 4 + 4) * 2 * 2);
}

TEST(BenchBytesModel, OracleReadsEveryKeyAndWindowNothing) {
    const BytesModel oracle(tiny_model(), DType::BF16, DType::BF16, policy(PolicyKind::Oracle, 16));
    EXPECT_DOUBLE_EQ(oracle.decode_step(100, 40).meta, 100 * 16 * 2 * 2 * 2);
    const BytesModel window(tiny_model(), DType::BF16, DType::BF16, policy(PolicyKind::Window, 16));
    EXPECT_DOUBLE_EQ(window.decode_step(100, 40).meta, 0);
}

TEST(BenchBytesModel, PrefillChunkWritesItsTokensAndReadsThePrefixOnce) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Full, 16));
    const TrafficBytes b = m.prefill_chunk(10, 5);
    EXPECT_DOUBLE_EQ(b.weights, kForwardWeights + 5 * kEmbedRow);
    EXPECT_DOUBLE_EQ(b.kv, 5 * kKvTokenF32 + 15 * kKvTokenF32);
    EXPECT_DOUBLE_EQ(b.meta, 0);
}

TEST(BenchBytesModel, AttentionStepHasNoWeightsAndNoAppend) {
    const BytesModel m(tiny_model(), DType::F32, DType::F32, policy(PolicyKind::Quest, 16));
    const TrafficBytes b = m.attention_step(100, 60);
    EXPECT_DOUBLE_EQ(b.weights, 0);
    EXPECT_DOUBLE_EQ(b.kv, 60 * kKvTokenF32);
    EXPECT_DOUBLE_EQ(b.meta, 6 * 2 * 16 * 4 * 2 * 2);
}

}  // namespace
}  // namespace dsa
