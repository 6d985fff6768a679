#include "bench/bytes_model.h"

#include <algorithm>

namespace dsa {

namespace {

double bytes_of(const TensorView& t) {
    return t.valid() ? static_cast<double>(t.nbytes) : 0.0;
}

// Every tensor a forward pass reads whole: all but the embedding table, of which it reads one row per
// token (a tied LM head reads the whole table as the LM head).
double forward_weight_bytes(const ModelWeights& w) {
    double b = bytes_of(w.final_norm) + bytes_of(w.lm_head);
    for (const LayerWeights& l : w.layers) {
        for (const TensorView* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.q_norm,
                                    &l.k_norm, &l.mlp_norm, &l.w_gate, &l.w_up, &l.w_down}) {
            b += bytes_of(*t);
        }
    }
    return b;
}

constexpr double kSumElem = 4.0;  // NSA's summary is fp32 (ksum) with an int32 count on every backend

}  // namespace

TrafficBytes& TrafficBytes::operator+=(const TrafficBytes& o) {
    weights += o.weights;
    kv += o.kv;
    meta += o.meta;
    return *this;
}

BytesModel::BytesModel(const Model& model, DType kv_dtype, DType minmax_dtype, const AttentionPolicy& policy)
    : cfg_(model.config), policy_(policy) {
    weights_ = forward_weight_bytes(model.weights);
    embed_row_ =
        static_cast<double>(cfg_.hidden_size) * static_cast<double>(dtype_size(model.weights.embed.dtype));
    kv_elem_ = static_cast<double>(dtype_size(kv_dtype));
    minmax_elem_ = static_cast<double>(dtype_size(minmax_dtype));
    kv_token_ = 2.0 * cfg_.n_layers * cfg_.n_kv_heads * cfg_.head_dim * kv_elem_;
}

double BytesModel::selection_bytes(int n_tokens, double attended_tokens) const {
    // A step that attends every token ran dense attention: nothing was selected (selection.h).
    if (attended_tokens >= n_tokens - 0.5) return 0.0;
    const int sparse_layers = std::max(0, cfg_.n_layers - policy_.dense_layers);
    const double D = cfg_.head_dim;
    const int P = policy_.page_size;
    const double competing_pages =
        n_tokens / P - (n_tokens % P == 0 ? 1 : 0);  // competing: all but the current
    double per_head = 0;
    switch (policy_.kind) {
        case PolicyKind::Quest:
            per_head = competing_pages * 2.0 * D * minmax_elem_;
            break;  // kmin, kmax
        case PolicyKind::Nsa:
            per_head = competing_pages * (D * kSumElem + kSumElem);
            break;  // ksum, count
        case PolicyKind::Oracle:
            per_head = static_cast<double>(n_tokens) * D * kv_elem_;
            break;  // every key
        case PolicyKind::Full:
        case PolicyKind::Window:
            per_head = 0;
            break;
    }
    return per_head * sparse_layers * cfg_.n_kv_heads;
}

TrafficBytes BytesModel::attention_step(int n_tokens, double attended_tokens) const {
    TrafficBytes b;
    b.kv = attended_tokens * kv_token_;
    b.meta = selection_bytes(n_tokens, attended_tokens);
    return b;
}

TrafficBytes BytesModel::decode_step(int n_tokens, double attended_tokens, int batch) const {
    TrafficBytes b = attention_step(n_tokens, attended_tokens);
    b.kv += kv_token_;  // the new token's K/V appended
    b.kv *= batch;
    b.meta *= batch;
    b.weights = weights_ + batch * embed_row_;
    return b;
}

TrafficBytes BytesModel::prefill_chunk(int pos0, int T) const {
    TrafficBytes b;
    b.weights = weights_ + T * embed_row_;
    b.kv = static_cast<double>(T) * kv_token_ + static_cast<double>(pos0 + T) * kv_token_;
    return b;
}

}  // namespace dsa
