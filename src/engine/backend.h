#pragma once
// The contract every backend (CPU reference, CUDA) implements: run a chunk of tokens of one sequence
// through the whole model, appending their K/V to the paged cache, and return logits.
#include <memory>
#include <span>
#include <string>

#include "kv/sequence.h"
#include "model/model.h"

namespace dsa {

enum class LogitsMode { Last, All };

struct BackendOptions {
    int context = 0;     // KV capacity in tokens; 0: the model's max_position_embeddings (capped by memory)
    int page_size = 16;  // P
    int threads = 0;     // CPU threads; 0: all cores
};

// Counters of the last forward() call, for the timing lines and `compare`.
struct ForwardStats {
    double attended_tokens = 0;  // mean tokens attended per (layer, kv head) per query token
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;  // "cpu" or "cuda"
    virtual const Model& model() const = 0;
    virtual int context_capacity() const = 0;  // tokens one sequence can hold

    // Runs `tokens` (T >= 1) at positions seq.n_tokens .. seq.n_tokens+T-1, appends their K/V, advances
    // seq.n_tokens by T. logits: [vocab] for Last, [T][vocab] for All. Throws dsa::Error when the tokens do
    // not fit the cache (seq unchanged).
    virtual void forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode, std::span<float> logits) = 0;
    virtual void release(Sequence& seq) = 0;  // frees the sequence's pages
    virtual ForwardStats last_stats() const { return {}; }
};

// device: "cpu", "cuda" or "auto" (cuda when a device exists). "cuda" without a usable device, or in a
// build without CUDA, throws dsa::Error with one clear line.
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, const BackendOptions& opts);

bool cuda_compiled();       // CUDA support compiled into this binary
int cuda_device_count();    // 0 when not compiled or no device/driver

}  // namespace dsa
