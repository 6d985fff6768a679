#pragma once
// The bytes a forward pass must move between memory and the chip (docs/bench.md, "Bytes model"): what
// achieved GB/s and % of the measured bandwidth are computed from. Decode is memory-bound, so
// time >= bytes / bandwidth; every count here is a minimum (each byte once), never a measurement.
#include "attention/policy.h"
#include "model/model.h"
#include "util/dtype.h"

namespace dsa {

struct TrafficBytes {
    double weights = 0;  // projections, norms, biases, LM head (stored dtype) + the embedding rows used
    double kv = 0;       // K/V read by attention + K/V written by the append
    double meta = 0;     // what the policy's selection reads: page metadata, or keys for the oracle
    double total() const { return weights + kv + meta; }
    TrafficBytes& operator+=(const TrafficBytes& o);
};

class BytesModel {
public:
    // kv_dtype: the cache's K/V element type (Backend::kv_dtype()); minmax_dtype: the element type of the
    // Quest bounds kmin/kmax (Backend::meta_minmax_dtype()).
    BytesModel(const Model& model, DType kv_dtype, DType minmax_dtype, const AttentionPolicy& policy);

    // One decode step (one token) with n_tokens cached tokens, the new one included, of which the backend
    // attended `attended_tokens` per (layer, KV head) on average (ForwardStats::attended_tokens). A batch of
    // B such sequences reads the weights once and each sequence's K/V and metadata: weights + B x the rest.
    TrafficBytes decode_step(int n_tokens, double attended_tokens, int batch = 1) const;
    // One prefill chunk of T tokens at positions pos0 .. pos0+T-1: weights once, the chunk's K/V written,
    // and every cached K/V of positions < pos0+T read once (a flash-attention pass reads no less).
    TrafficBytes prefill_chunk(int pos0, int T) const;
    // The attention of one decode step alone (--kernels): K/V of the attended tokens + selection reads.
    TrafficBytes attention_step(int n_tokens, double attended_tokens) const;

    double weight_bytes_per_forward() const { return weights_; }
    double kv_bytes_per_token() const { return kv_token_; }  // K+V of one token in every layer and KV head

private:
    // Bytes the selection of every sparse layer reads in a step that selects (attends < n_tokens).
    double selection_bytes(int n_tokens, double attended_tokens) const;

    const ModelConfig& cfg_;
    AttentionPolicy policy_;
    double weights_ = 0;      // read once per forward pass
    double embed_row_ = 0;    // one token's embedding row
    double kv_token_ = 0;     // [n_layers][n_kv_heads][2][head_dim] in kv dtype
    double kv_elem_ = 0;      // bytes of one K/V element
    double minmax_elem_ = 0;  // bytes of one kmin/kmax element
};

}  // namespace dsa
