#include "model/model.h"

#include <functional>

namespace dsa {

namespace {

// Calls fn on every bound tensor once; a tied lm_head is the embedding and is skipped.
void for_each_bound(const ModelWeights& w, const std::function<void(const TensorView&)>& fn) {
    auto visit = [&](const TensorView& t) {
        if (t.valid()) fn(t);
    };
    visit(w.embed);
    visit(w.final_norm);
    if (w.lm_head.data != w.embed.data) visit(w.lm_head);
    for (const LayerWeights& l : w.layers) {
        for (const TensorView* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.q_norm,
                                    &l.k_norm, &l.mlp_norm, &l.w_gate, &l.w_up, &l.w_down}) {
            visit(*t);
        }
    }
}

}  // namespace

int64_t Model::parameter_count() const {
    int64_t n = 0;
    for_each_bound(weights, [&](const TensorView& t) { n += t.numel(); });
    return n;
}

size_t Model::weight_bytes() const {
    size_t n = 0;
    for_each_bound(weights, [&](const TensorView& t) { n += t.nbytes; });
    return n;
}

DType Model::weight_dtype() const {
    return weights.layers.empty() ? weights.embed.dtype : weights.layers.front().wq.dtype;
}

Model load_model(const std::filesystem::path& dir) {
    Model m;
    m.dir = dir;
    m.config = load_model_config(dir);
    m.store = TensorStore::open_dir(dir);
    m.weights = bind_weights(m.config, m.store);
    return m;
}

}  // namespace dsa
