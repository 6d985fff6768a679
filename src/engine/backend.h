#pragma once
// The contract every backend (CPU reference, CUDA) implements: run a chunk of tokens of one sequence
// through the whole model, appending their K/V to the paged cache, and return logits.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attention/policy.h"
#include "kv/sequence.h"
#include "model/model.h"
#include "util/error.h"

namespace dsa {

enum class LogitsMode { Last, All };

struct BackendOptions {
    int context = 0;    // KV capacity in tokens; 0: the model's max_position_embeddings (capped by memory)
    int max_batch = 1;  // sequences one forward_batch() decodes together; the cache holds max_batch x context
    int page_size = 16;     // P
    int threads = 0;        // CPU threads; 0: all cores
    int prefill_chunk = 0;  // CUDA: prompt tokens per prefill pass (GEMM rows); 0: kCudaPrefillChunk
    // Decode attention (forward() of one token; prefill chunks are always dense). A sparse policy's
    // page_size must equal page_size above (full attention follows the cache's).
    AttentionPolicy attention;
    bool collect_recall = false;  // fill ForwardStats::recall on decode steps (one extra full-score pass)
};

// Counters of the last forward() call, for the timing lines and `compare`.
struct ForwardStats {
    double attended_tokens = 0;  // mean tokens attended per (layer, kv head) per query token
    // After a decode step: per layer, the tokens attended per query head (mean over the heads; every cached
    // token in dense layers). [n_layers]; empty after prefill chunks.
    std::vector<double> attended_per_layer;
    // With BackendOptions::collect_recall, after a decode step: per layer, the share of the full-attention
    // probability mass that falls on the attended tokens, averaged over query heads (1 when dense).
    // [n_layers]; empty after prefill chunks.
    std::vector<double> recall;
};

// The attention of one decode step alone, timed by the backend (dsa bench --kernels).
struct AttentionTiming {
    std::vector<double> ms;      // [reps] time of one step's attention over every layer
    double attended_tokens = 0;  // as ForwardStats::attended_tokens, for that step
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;  // "cpu" or "cuda"
    virtual const Model& model() const = 0;
    virtual int context_capacity() const = 0;  // tokens one sequence can hold
    // Prompt tokens per forward() that the commands prefill with unless -b/--batch-size says otherwise:
    // 512 on the CPU; the CUDA backend's prefill pass (kCudaPrefillChunk), since it runs any longer
    // forward() in passes of that size anyway and each smaller chunk re-reads the weights and the cache.
    virtual int prefill_chunk() const { return 512; }

    // Runs `tokens` (T >= 1) at positions seq.n_tokens .. seq.n_tokens+T-1, appends their K/V, advances
    // seq.n_tokens by T. logits: [vocab] for Last, [T][vocab] for All. Throws dsa::Error when the tokens do
    // not fit the cache (seq unchanged). T == 1 is a decode step: it attends through the attention policy.
    // T >= 2 is a prefill chunk: dense causal attention (prefill() never sends a 1-token chunk unless the
    // whole prompt is one token, whose step every policy attends densely anyway).
    virtual void forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                         std::span<float> logits) = 0;
    // One decode step of each of B = seqs.size() distinct sequences (1 <= B <= BackendOptions::max_batch):
    // tokens[b] at position seqs[b]->n_tokens, which then advances by 1. Sequences may have different
    // lengths. logits: [B][vocab]. last_stats() then holds the means over the B sequences. Throws dsa::Error
    // like forward() (no sequence advances when one does not fit). Backends without batches throw.
    virtual void forward_batch(std::span<Sequence* const> seqs, std::span<const int> tokens,
                               std::span<float> logits);
    virtual void release(Sequence& seq) = 0;  // frees the sequence's pages
    virtual ForwardStats last_stats() const { return {}; }

    // Replaces BackendOptions::attention / collect_recall for the following forward() calls. A sparse
    // policy's page size must be the cache's (dsa::Error otherwise). Backends without sparse attention throw.
    virtual void set_attention(const AttentionPolicy& policy, bool collect_recall);
    // dst (released first) becomes a copy of src on pages of its own: K/V and page metadata. compare runs
    // every policy from one prefilled prompt this way. Throws dsa::Error when the cache has no room, or when
    // the backend cannot copy sequences.
    virtual void copy_sequence(const Sequence& src, Sequence& dst);

    // For dsa bench (docs/bench.md). Element type of the K/V pools.
    virtual DType kv_dtype() const { return DType::F32; }
    // Element type of the Quest page metadata kmin/kmax (ksum and count stay fp32 and int32 everywhere).
    virtual DType meta_minmax_dtype() const { return DType::F32; }
    // Copy bandwidth of the memory that holds the weights and the KV cache, measured now: GB/s counting
    // bytes read + written, e.g. one 4 GiB device-to-device copy, median of repetitions after a warm-up.
    // 0: the backend does not measure it (bench times a host memcpy for "cpu", leaves % BW empty otherwise).
    virtual double measure_bandwidth_gbs() { return 0.0; }
    // Times `reps` runs, after one warm-up, of the attention part of a decode step over seq's seq.n_tokens
    // cached tokens (the current one included), over every layer: the policy's selection (page scores,
    // top-k) and the decode attention over the selected K/V, with the queries the backend holds from its
    // last decode step. No projection, RoPE, K/V append or MLP; seq and the cache are left unchanged.
    // reps 0 with an empty seq launches nothing (a capability probe).
    virtual AttentionTiming time_decode_attention(const Sequence&, int) {
        throw Error(
            "--kernels needs the CUDA backend (--device cuda): the {} backend cannot time attention "
            "apart from the rest of the step",
            name());
    }
};

// The checks every forward_batch() starts with: 1 <= B <= max_batch, one token per sequence, room for
// [B][vocab] logits, distinct sequences, token ids in the vocabulary. Throws dsa::Error naming the problem.
void check_batch(const ModelConfig& cfg, int max_batch, std::span<Sequence* const> seqs,
                 std::span<const int> tokens, std::span<const float> logits);

// device: "cpu", "cuda" or "auto" (cuda when a device exists). "cuda" without a usable device, or in a
// build without CUDA, throws dsa::Error with one clear line.
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model,
                                      const BackendOptions& opts);

bool cuda_compiled();     // CUDA support compiled into this binary
int cuda_device_count();  // 0 when not compiled or no device/driver

}  // namespace dsa
