// Binds the HF tensor names of a Llama-family checkpoint and checks every shape against config.json, so the
// backends can index weights without checks of their own.
#include "model/weights.h"

#include <fmt/format.h>

#include <optional>

#include "util/error.h"

namespace dsa {

namespace {

class Binder {
  public:
    Binder(const ModelConfig& config, const TensorStore& store) : config_(config), store_(store) {}

    TensorView vector(const std::string& name, int64_t n) { return bind(name, {n}); }

    // Weight matrices all share one dtype: the backends run one GEMM/GEMV variant per model.
    TensorView matrix(const std::string& name, int64_t rows, int64_t cols) {
        TensorView t = bind(name, {rows, cols});
        if (!matrix_dtype_) {
            matrix_dtype_ = t.dtype;
            first_matrix_ = name;
        } else if (t.dtype != *matrix_dtype_) {
            throw Error(
                "{}: tensor {} has dtype {}, expected {} like {} (all weight matrices must share one dtype)",
                store_.origin(name), name, dtype_name(t.dtype), dtype_name(*matrix_dtype_), first_matrix_);
        }
        return t;
    }

  private:
    TensorView bind(const std::string& name, const std::vector<int64_t>& shape) {
        const TensorView* t = store_.find(name);
        if (!t) {
            const std::string where = store_.dir().empty() ? std::string("weights") : store_.dir().string();
            throw Error("{}: missing tensor {} (needed by {})", where, name, config_.arch_name);
        }
        if (t->shape != shape) {
            throw Error("{}: tensor {} has shape {}, expected {} from config.json", store_.origin(name), name,
                        shape_to_string(t->shape), shape_to_string(shape));
        }
        return *t;
    }

    const ModelConfig& config_;
    const TensorStore& store_;
    std::optional<DType> matrix_dtype_;
    std::string first_matrix_;
};

}  // namespace

ModelWeights bind_weights(const ModelConfig& c, const TensorStore& store) {
    Binder b(c, store);
    ModelWeights w;
    const int64_t hidden = c.hidden_size, inter = c.intermediate_size, q_dim = c.q_dim(), kv_dim = c.kv_dim();
    w.embed = b.matrix("model.embed_tokens.weight", c.vocab_size, hidden);
    w.layers.resize(c.n_layers);
    for (int i = 0; i < c.n_layers; ++i) {
        const std::string p = fmt::format("model.layers.{}.", i);
        LayerWeights& l = w.layers[i];
        l.attn_norm = b.vector(p + "input_layernorm.weight", hidden);
        l.wq = b.matrix(p + "self_attn.q_proj.weight", q_dim, hidden);
        l.wk = b.matrix(p + "self_attn.k_proj.weight", kv_dim, hidden);
        l.wv = b.matrix(p + "self_attn.v_proj.weight", kv_dim, hidden);
        l.wo = b.matrix(p + "self_attn.o_proj.weight", hidden, q_dim);
        if (c.attention_bias) {
            l.bq = b.vector(p + "self_attn.q_proj.bias", q_dim);
            l.bk = b.vector(p + "self_attn.k_proj.bias", kv_dim);
            l.bv = b.vector(p + "self_attn.v_proj.bias", kv_dim);
        }
        if (c.qk_norm) {
            l.q_norm = b.vector(p + "self_attn.q_norm.weight", c.head_dim);
            l.k_norm = b.vector(p + "self_attn.k_norm.weight", c.head_dim);
        }
        l.mlp_norm = b.vector(p + "post_attention_layernorm.weight", hidden);
        l.w_gate = b.matrix(p + "mlp.gate_proj.weight", inter, hidden);
        l.w_up = b.matrix(p + "mlp.up_proj.weight", inter, hidden);
        l.w_down = b.matrix(p + "mlp.down_proj.weight", hidden, inter);
    }
    w.final_norm = b.vector("model.norm.weight", hidden);
    // Tied checkpoints usually omit lm_head.weight; HF ignores it when present, and so does dsa.
    w.lm_head = c.tie_word_embeddings ? w.embed : b.matrix("lm_head.weight", c.vocab_size, hidden);
    return w;
}

}  // namespace dsa
