#pragma once
// The CPU reference backend: the whole forward pass in fp32 from the stored weight dtype, over an fp32
// paged KV cache, multi-threaded over output rows (matmuls) and over (token, kv head) pairs (attention).
// A forward() of one token is a decode step: its attention goes through the attention policy (select per
// KV head, attend the selection). Chunks of two or more tokens are prefill: dense causal attention.
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "kv/paged_cache.h"
#include "model/rope.h"
#include "util/thread_pool.h"

namespace dsa {

class CpuBackend final : public Backend {
public:
    // Throws dsa::Error when the fp32 cache for opts.context tokens does not fit in available memory.
    CpuBackend(const Model& model, const BackendOptions& opts);

    std::string name() const override { return "cpu"; }
    const Model& model() const override { return model_; }
    int context_capacity() const override { return context_; }
    void forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                 std::span<float> logits) override;
    // The B sequences' tokens as the B rows of one pass: every matmul reads its weights once for all of
    // them, attention runs per sequence. Each row's logits are those forward() gives that sequence alone,
    // bit for bit (rows never mix in a matmul).
    void forward_batch(std::span<Sequence* const> seqs, std::span<const int> tokens,
                       std::span<float> logits) override;
    void release(Sequence& seq) override { cache_->release(seq); }
    ForwardStats last_stats() const override { return stats_; }
    void set_attention(const AttentionPolicy& policy, bool collect_recall) override;
    void copy_sequence(const Sequence& src, Sequence& dst) override;

    const PagedKvCache& cache() const { return *cache_; }
    const RopeTable& rope() const { return rope_; }

private:
    // Norm weights and biases as fp32 (a few KiB per layer; the matrices stay in their stored dtype).
    struct SmallWeights {
        std::vector<float> attn_norm, mlp_norm;  // [hidden]
        std::vector<float> bq, bk, bv;           // [q_dim], [kv_dim], [kv_dim]; empty without bias
        std::vector<float> q_norm, k_norm;       // [head_dim]; empty without qk norm
    };

    // Rows [row0, row0 + T) of a pass: T consecutive tokens of one sequence from position pos0. A prefill
    // chunk is one of them; a batched decode step is B of them with T = 1.
    struct RowChunk {
        const Sequence* seq = nullptr;
        int pos0 = 0, row0 = 0, T = 0;
    };
    // A layer's attended tokens and recall (means over KV heads) for one decode row.
    struct RowAttention {
        double attended = 0, recall = 1;
    };

    void check_room(const Sequence& seq, int T) const;  // seq can take T more tokens (-c)
    void ensure_scratch(int rows);
    void embed_rows(std::span<const int> tokens);
    void lm_head(int first, int rows, float* out);
    void set_decode_stats();
    void rope_tables(std::span<const RowChunk> chunks);
    // The layers over every row; layer_attended_ / layer_recall_ get the means over the chunks' decode rows.
    void run_layers(std::span<const RowChunk> chunks, int rows);
    void attention_block(int layer, std::span<const RowChunk> chunks, int rows);
    // Dense causal attention of a chunk's T query tokens (prefill, and full-attention decode).
    void causal_attention(int layer, const RowChunk& c, float scale);
    // Decode attention of a chunk's one token under the sparse policy: select per KV head, attend the
    // selection.
    RowAttention sparse_decode_attention(int layer, const RowChunk& c, float scale);
    void mlp_block(int layer, int rows);

    const Model& model_;
    const ModelConfig& cfg_;
    int context_ = 0;                       // tokens one sequence can hold
    int max_batch_ = 1;                     // sequences of one forward_batch()
    std::unique_ptr<ThreadPool> own_pool_;  // only when opts.threads asks for a specific count
    ThreadPool* pool_ = nullptr;
    std::unique_ptr<PagedKvCache> cache_;
    RopeTable rope_;
    std::vector<SmallWeights> layers_;
    std::vector<float> final_norm_;  // [hidden]
    ForwardStats stats_;
    AttentionPolicy policy_;
    bool collect_recall_ = false;
    std::vector<double> layer_attended_;  // [n_layers] tokens attended per query head this step
    std::vector<double> layer_recall_;    // [n_layers] attention recall this step, mean over query heads

    // Scratch for the most rows seen so far (grown on demand, never per token in decode).
    int max_T_ = 0;
    std::vector<float> x_;                // [T][hidden] residual stream
    std::vector<float> xn_;               // [T][hidden] normed input of a block
    std::vector<float> q_, att_;          // [T][q_dim]
    std::vector<float> k_, v_;            // [T][kv_dim]
    std::vector<float> proj_;             // [T][hidden] output projection of a block
    std::vector<float> gate_, up_;        // [T][intermediate]
    std::vector<float> cos_, sin_;        // [T][head_dim / 2]
    std::vector<RowChunk> batch_chunks_;  // [B] the rows of a forward_batch() step
};

}  // namespace dsa
