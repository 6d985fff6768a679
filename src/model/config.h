#pragma once
// The model hyper-parameters dsa needs, read from a Hugging Face config.json (+ generation_config.json).
// Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/dtype.h"

namespace dsa {

enum class Arch { Llama, Mistral, Qwen2, Qwen3 };

enum class RopeType { Default, Linear, Llama3, Yarn };

// HF `rope_scaling` (also spelled `rope_parameters` in newer configs). Fields unused by a type keep defaults.
struct RopeScaling {
    RopeType type = RopeType::Default;
    double factor = 1.0;
    // llama3
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    int original_max_position_embeddings = 0;  // llama3 and yarn; 0: max_position_embeddings
    // yarn
    double beta_fast = 32.0;
    double beta_slow = 1.0;
    double mscale = 1.0;
    double mscale_all_dim = 0.0;
    double attention_factor = 0.0;  // 0: derived as in HF (0.1 * ln(factor) + 1)
    bool truncate = true;           // yarn: floor/ceil the correction range (HF `truncate`, default true)
};

// The sampling settings of generation_config.json, each only where the file sets it: `dsa generate` uses
// them for the flags its command line leaves out, as HF generate() and vLLM do.
struct GenerationDefaults {
    std::optional<bool> do_sample;             // false: greedy
    std::optional<double> temperature;         // >= 0
    std::optional<int> top_k;                  // <= 0: disabled
    std::optional<double> top_p;               // (0, 1]
    std::optional<double> min_p;               // [0, 1]
    std::optional<double> repetition_penalty;  // > 0
};

struct ModelConfig {
    Arch arch = Arch::Llama;
    std::string arch_name;  // as written in config.json, e.g. "LlamaForCausalLM"
    int hidden_size = 0;
    int intermediate_size = 0;
    int n_layers = 0;
    int n_heads = 0;
    int n_kv_heads = 0;
    int head_dim = 0;  // explicit `head_dim`, else hidden_size / n_heads
    int vocab_size = 0;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    RopeScaling rope_scaling;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  // q/k/v biases (Qwen2; Llama `attention_bias: true`)
    bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)
    int max_position_embeddings = 0;
    int bos_token_id = -1;            // -1: none
    std::vector<int> eos_token_ids;   // generation stops at any of these
    GenerationDefaults generation;    // generation_config.json's sampling settings
    DType torch_dtype = DType::BF16;  // informational: the dtype the checkpoint says it is stored in

    int group_size() const { return n_heads / n_kv_heads; }
    int q_dim() const { return n_heads * head_dim; }
    int kv_dim() const { return n_kv_heads * head_dim; }
};

// Parses config.json content. `source` names the file in error messages. Throws dsa::Error on an unknown
// architecture, a missing or ill-typed required field, or inconsistent values (heads not divisible, ...).
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);

// Reads DIR/config.json and, when present, DIR/generation_config.json (its bos/eos override config.json's;
// its sampling settings, range-checked, fill `generation`).
ModelConfig load_model_config(const std::filesystem::path& dir);

std::string arch_to_string(Arch a);

}  // namespace dsa
