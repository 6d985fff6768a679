#pragma once
// The CUDA backend: the whole dense model on one GPU.
//   prefill: chunks of up to max_chunk tokens; cuBLAS GEMMs, causal flash attention over the paged cache.
//   decode (one token per sequence, up to max_batch sequences): GEMV kernels (cuBLAS GEMMs for B > 1), the
//   policy's page selection (device_selection.h), split-KV GQA decode attention over the page lists, captured
//   once as a CUDA graph and replayed every step (step inputs live in device memory; the only host sync is
//   for the result).
// Weights stay in their stored dtype (see device_weights.h); the KV cache is bf16 with fp32 page metadata.
#include <memory>
#include <span>
#include <string>

#include "engine/backend.h"

namespace dsa {

// Prompt tokens per prefill pass unless BackendOptions::prefill_chunk says otherwise: GEMMs of M = 8192
// measured 0.7-0.8% faster over a 32K prompt than 4096 (docs/perf.md, "Prefill"), for ~0.8 GB more
// activations on the Llama-3.1-8B shape.
constexpr int kCudaPrefillChunk = 8192;

class CudaBackend final : public Backend {
public:
    // Throws dsa::Error without a device, when the weights and the KV cache for opts.context tokens do not
    // fit in device memory (context 0: the model's maximum, capped by free memory). Every attention policy
    // runs on the device: sparse selection kernels build the page lists the decode attention reads.
    CudaBackend(const Model& model, const BackendOptions& opts);
    ~CudaBackend() override;

    std::string name() const override { return "cuda"; }
    const Model& model() const override;
    int context_capacity() const override;
    int prefill_chunk() const override;
    void forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                 std::span<float> logits) override;
    // B sequences in one decode step: one graph per batch size, GEMMs of B rows (weights read once), the
    // decode attention and selection over all B sequences in one launch each.
    void forward_batch(std::span<Sequence* const> seqs, std::span<const int> tokens,
                       std::span<float> logits) override;
    void release(Sequence& seq) override;
    ForwardStats last_stats() const override;
    // Any policy; attention recall (collect_recall) is the CPU backend's only.
    void set_attention(const AttentionPolicy& policy, bool collect_recall) override;
    // The selection and decode attention of every layer, as one CUDA graph timed with device events.
    AttentionTiming time_decode_attention(const Sequence& seq, int reps) override;
    DType kv_dtype() const override { return DType::BF16; }
    // kmin/kmax are min/max of the bf16 keys, stored losslessly in bf16 (device_kv_cache.h).
    DType meta_minmax_dtype() const override { return DType::BF16; }
    // One 4 GiB device-to-device copy, median of 10 after 2 warm-ups, counting bytes read + written.
    double measure_bandwidth_gbs() override;

    // One decode step that keeps the logits on the device: runs `token`, returns the argmax of its logits
    // (greedy sampling; ties to the lower id). Copies 4 bytes to the host instead of vocab * 4.
    int forward_greedy(Sequence& seq, int token);

    // Decode steps replay a CUDA graph (default on; off runs the same kernels one by one, for comparison).
    void set_use_graphs(bool on);
    // Device bytes of the weights as uploaded, and of the KV cache (K/V + metadata), for reports.
    size_t weight_bytes() const;
    size_t kv_cache_bytes() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dsa
