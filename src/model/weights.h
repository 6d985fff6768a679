#pragma once
// Binds HF tensor names to the model's parts and checks every shape against the config.
// Names: model.embed_tokens.weight, model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
// self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}.weight (+ q/k/v .bias),
// model.norm.weight, lm_head.weight (absent when tie_word_embeddings).
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"
#include "model/tensor.h"

namespace dsa {

struct LayerWeights {
    TensorView attn_norm;   // [hidden]
    TensorView wq;          // [n_heads * head_dim][hidden]
    TensorView wk;          // [n_kv_heads * head_dim][hidden]
    TensorView wv;          // [n_kv_heads * head_dim][hidden]
    TensorView wo;          // [hidden][n_heads * head_dim]
    TensorView bq, bk, bv;  // [q_dim], [kv_dim], [kv_dim]; only when config.attention_bias
    TensorView q_norm;      // [head_dim]; only when config.qk_norm
    TensorView k_norm;      // [head_dim]; only when config.qk_norm
    TensorView mlp_norm;    // [hidden]
    TensorView w_gate;      // [intermediate][hidden]
    TensorView w_up;        // [intermediate][hidden]
    TensorView w_down;      // [hidden][intermediate]
};

struct ModelWeights {
    TensorView embed;       // [vocab][hidden]
    TensorView final_norm;  // [hidden]
    TensorView lm_head;     // [vocab][hidden]; the embedding itself when tied
    std::vector<LayerWeights> layers;
};

// Throws dsa::Error "missing tensor NAME" / "tensor NAME has shape [..], expected [..]".
ModelWeights bind_weights(const ModelConfig& config, const TensorStore& store);

}  // namespace dsa
