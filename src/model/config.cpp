// config.json parsing for the Llama family. Missing optional fields take the defaults of the matching
// transformers config class (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config in transformers 5), so a
// checkpoint reads the same here as in HF.
#include "model/config.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "util/error.h"

namespace dsa {

namespace {

using nlohmann::json;

constexpr const char* kSupported = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM";

// HF class defaults that differ between the architectures.
struct ArchDefaults {
    int max_position_embeddings;
    int bos_token_id;  // -1: none
    int eos_token_id;  // -1: none
};

ArchDefaults arch_defaults(Arch a) {
    switch (a) {
        case Arch::Llama:
            return {2048, 1, 2};
        case Arch::Mistral:
            return {4096 * 32, 1, 2};
        case Arch::Qwen2:
        case Arch::Qwen3:
            return {32768, -1, -1};
    }
    return {0, -1, -1};
}

std::optional<Arch> arch_from_name(const std::string& name) {
    if (name == "LlamaForCausalLM") return Arch::Llama;
    if (name == "MistralForCausalLM") return Arch::Mistral;
    if (name == "Qwen2ForCausalLM") return Arch::Qwen2;
    if (name == "Qwen3ForCausalLM") return Arch::Qwen3;
    return std::nullopt;
}

// Configs written by a bare XxxConfig().save_pretrained() carry only `model_type`, no `architectures`.
std::optional<Arch> arch_from_model_type(const std::string& type) {
    if (type == "llama") return Arch::Llama;
    if (type == "mistral") return Arch::Mistral;
    if (type == "qwen2") return Arch::Qwen2;
    if (type == "qwen3") return Arch::Qwen3;
    return std::nullopt;
}

// A present, non-null field.
const json* field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return nullptr;
    return &*it;
}

int as_int(const json& v, const char* key, const std::string& source) {
    if (v.is_number_integer()) {
        const int64_t x = v.get<int64_t>();
        if (x < INT32_MIN || x > INT32_MAX)
            throw Error("{}: '{}' = {} does not fit in 32 bits", source, key, x);
        return static_cast<int>(x);
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (d == std::floor(d) && std::abs(d) < 2147483648.0) return static_cast<int>(d);
    }
    throw Error("{}: '{}' must be an integer, got {}", source, key, v.dump());
}

int required_int(const json& j, const char* key, const std::string& source) {
    const json* v = field(j, key);
    if (!v) throw Error("{}: missing required field '{}'", source, key);
    return as_int(*v, key, source);
}

int optional_int(const json& j, const char* key, int fallback, const std::string& source) {
    const json* v = field(j, key);
    return v ? as_int(*v, key, source) : fallback;
}

double as_double(const json& v, const char* key, const std::string& source) {
    if (!v.is_number()) throw Error("{}: '{}' must be a number, got {}", source, key, v.dump());
    return v.get<double>();
}

double optional_double(const json& j, const char* key, double fallback, const std::string& source) {
    const json* v = field(j, key);
    return v ? as_double(*v, key, source) : fallback;
}

bool optional_bool(const json& j, const char* key, bool fallback, const std::string& source) {
    const json* v = field(j, key);
    if (!v) return fallback;
    if (!v->is_boolean()) throw Error("{}: '{}' must be true or false, got {}", source, key, v->dump());
    return v->get<bool>();
}

// `eos_token_id`: an int, a list of ints, or null.
std::vector<int> token_id_list(const json& v, const char* key, const std::string& source) {
    std::vector<int> ids;
    if (v.is_array()) {
        for (const json& e : v) ids.push_back(as_int(e, key, source));
    } else {
        ids.push_back(as_int(v, key, source));
    }
    return ids;
}

// `bos_token_id`: an int, or a list whose first entry is used (a few configs write it as a list).
int bos_id(const json& v, const std::string& source) {
    const std::vector<int> ids = token_id_list(v, "bos_token_id", source);
    return ids.empty() ? -1 : ids.front();
}

Arch parse_arch(const json& j, const std::string& source, std::string& name) {
    if (const json* a = field(j, "architectures")) {
        if (!a->is_array() || a->empty() || !(*a)[0].is_string()) {
            throw Error("{}: 'architectures' must be a non-empty list of strings, got {}", source, a->dump());
        }
        name = (*a)[0].get<std::string>();
        if (auto arch = arch_from_name(name)) return *arch;
        throw Error("{}: unknown architecture '{}' (supported: {})", source, name, kSupported);
    }
    if (const json* t = field(j, "model_type"); t && t->is_string()) {
        if (auto arch = arch_from_model_type(t->get<std::string>())) {
            name = arch_to_string(*arch);
            return *arch;
        }
        throw Error("{}: unknown architecture for model_type '{}' (supported: {})", source,
                    t->get<std::string>(), kSupported);
    }
    throw Error("{}: missing 'architectures' (one of {}) and 'model_type'", source, kSupported);
}

DType parse_dtype(const json& j, const std::string& source) {
    // transformers 5 writes `dtype`, earlier versions `torch_dtype`.
    const json* v = field(j, "dtype");
    if (!v) v = field(j, "torch_dtype");
    if (!v) return DType::BF16;
    const std::string s = v->is_string() ? v->get<std::string>() : v->dump();
    if (s == "float32" || s == "torch.float32" || s == "float") return DType::F32;
    if (s == "float16" || s == "torch.float16" || s == "half") return DType::F16;
    if (s == "bfloat16" || s == "torch.bfloat16") return DType::BF16;
    spdlog::warn("{}: unknown torch_dtype '{}', assuming bfloat16 (the tensors' own dtypes are used)", source,
                 s);
    return DType::BF16;
}

RopeType parse_rope_type(const std::string& s, const std::string& source) {
    if (s == "default") return RopeType::Default;
    if (s == "linear") return RopeType::Linear;
    if (s == "llama3") return RopeType::Llama3;
    if (s == "yarn") return RopeType::Yarn;
    throw Error("{}: unsupported rope type '{}' (supported: default, linear, llama3, yarn)", source, s);
}

// yarn's get_mscale in transformers' modeling_rope_utils.
double yarn_get_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// `rope_scaling` (transformers 4) or `rope_parameters` (transformers 5; may also hold rope_theta).
// Mirrors RotaryEmbeddingConfigMixin.standardize_rope_params and the per-type compute functions.
void parse_rope(const json& j, ModelConfig& c, const std::string& source) {
    const json* params = field(j, "rope_scaling");
    const char* params_key = "rope_scaling";
    if (!params) {
        params = field(j, "rope_parameters");
        params_key = "rope_parameters";
    }
    if (params && !params->is_object()) {
        throw Error("{}: '{}' must be an object or null, got {}", source, params_key, params->dump());
    }
    // The dict's values win over the top-level ones it was standardised from.
    c.rope_theta = optional_double(j, "rope_theta", 10000.0, source);
    double partial = optional_double(j, "partial_rotary_factor", 1.0, source);
    if (params) {
        c.rope_theta = optional_double(*params, "rope_theta", c.rope_theta, source);
        partial = optional_double(*params, "partial_rotary_factor", partial, source);
    }
    if (!(c.rope_theta > 0)) throw Error("{}: rope_theta must be positive, got {}", source, c.rope_theta);
    if (partial != 1.0) {
        throw Error("{}: partial_rotary_factor {} is not supported (only 1.0: RoPE over the whole head)",
                    source, partial);
    }
    if (!params) return;
    const json& p = *params;

    std::string type = "default";
    if (const json* t = field(p, "rope_type")) {
        type = t->is_string() ? t->get<std::string>() : t->dump();
    } else if (const json* t2 = field(p, "type")) {
        type = t2->is_string() ? t2->get<std::string>() : t2->dump();
    }
    RopeScaling& rs = c.rope_scaling;
    rs.type = parse_rope_type(type, source);

    // HF prefers a top-level original_max_position_embeddings (Phi3 style), then the dict's, then
    // max_position_embeddings.
    const int top_orig = optional_int(j, "original_max_position_embeddings", 0, source);
    const int orig =
        top_orig > 0 ? top_orig
                     : optional_int(p, "original_max_position_embeddings", c.max_position_embeddings, source);
    auto need = [&](const char* key) {
        const json* v = field(p, key);
        if (!v) throw Error("{}: {} rope type '{}' needs '{}'", source, params_key, type, key);
        return as_double(*v, key, source);
    };
    switch (rs.type) {
        case RopeType::Default:
            break;
        case RopeType::Linear:
            rs.factor = need("factor");
            break;
        case RopeType::Llama3:
            rs.factor = need("factor");
            rs.low_freq_factor = need("low_freq_factor");
            rs.high_freq_factor = need("high_freq_factor");
            rs.original_max_position_embeddings = orig;
            if (rs.low_freq_factor == rs.high_freq_factor) {
                throw Error("{}: llama3 rope needs low_freq_factor != high_freq_factor (both {})", source,
                            rs.low_freq_factor);
            }
            break;
        case RopeType::Yarn: {
            rs.original_max_position_embeddings = orig;
            if (orig <= 0) throw Error("{}: yarn rope needs original_max_position_embeddings > 0", source);
            // factor may be null: DeepSeek-V3 style, derived from the context extension.
            rs.factor =
                optional_double(p, "factor", static_cast<double>(c.max_position_embeddings) / orig, source);
            // HF: `get("beta_fast") or 32`, so 0 also means the default.
            const double bf = optional_double(p, "beta_fast", 0.0, source);
            const double bs = optional_double(p, "beta_slow", 0.0, source);
            rs.beta_fast = bf != 0.0 ? bf : 32.0;
            rs.beta_slow = bs != 0.0 ? bs : 1.0;
            const double mscale = optional_double(p, "mscale", 0.0, source);
            const double mscale_all_dim = optional_double(p, "mscale_all_dim", 0.0, source);
            rs.mscale = mscale != 0.0 ? mscale : 1.0;
            rs.mscale_all_dim = mscale_all_dim;
            rs.truncate = optional_bool(p, "truncate", true, source);
            if (const json* af = field(p, "attention_factor")) {
                rs.attention_factor = as_double(*af, "attention_factor", source);
            } else if (mscale != 0.0 && mscale_all_dim != 0.0) {
                rs.attention_factor =
                    yarn_get_mscale(rs.factor, mscale) / yarn_get_mscale(rs.factor, mscale_all_dim);
            } else {
                rs.attention_factor = yarn_get_mscale(rs.factor, 1.0);
            }
            break;
        }
    }
    if (rs.factor <= 0) throw Error("{}: rope factor must be positive, got {}", source, rs.factor);
}

// dsa attends the full context; a checkpoint that HF runs with a sliding window differs past the window.
// Mirrors MistralConfig (sliding_window, default 4096, on every layer) and Qwen2Config/Qwen3Config
// (only with use_sliding_window, on the layers listed as "sliding_attention", by default those from
// max_window_layers = 28 on).
void warn_sliding_window(const json& j, const ModelConfig& c, const std::string& source) {
    if (c.arch == Arch::Llama) return;
    const int window =
        j.contains("sliding_window") ? optional_int(j, "sliding_window", 0, source) : 4096;  // null: none
    int sliding_layers = 0;
    if (c.arch == Arch::Mistral) {
        sliding_layers = window < c.max_position_embeddings ? c.n_layers : 0;
    } else if (optional_bool(j, "use_sliding_window", false, source)) {
        if (const json* lt = field(j, "layer_types"); lt && lt->is_array()) {
            for (const json& t : *lt)
                sliding_layers += t.is_string() && t.get<std::string>() == "sliding_attention";
        } else {
            sliding_layers = std::max(0, c.n_layers - optional_int(j, "max_window_layers", 28, source));
        }
    }
    if (window > 0 && sliding_layers > 0) {
        spdlog::warn(
            "{}: {} of {} layers use a sliding window of {} tokens; dsa attends the full context, so "
            "outputs past {} tokens differ from the reference",
            source, sliding_layers, c.n_layers, window, window);
    }
}

}  // namespace

std::string arch_to_string(Arch a) {
    switch (a) {
        case Arch::Llama:
            return "LlamaForCausalLM";
        case Arch::Mistral:
            return "MistralForCausalLM";
        case Arch::Qwen2:
            return "Qwen2ForCausalLM";
        case Arch::Qwen3:
            return "Qwen3ForCausalLM";
    }
    return "unknown";
}

ModelConfig parse_model_config(const json& j, const std::string& source) {
    if (!j.is_object()) throw Error("{}: expected a JSON object", source);
    ModelConfig c;
    c.arch = parse_arch(j, source, c.arch_name);
    const ArchDefaults defaults = arch_defaults(c.arch);

    if (const json* q = field(j, "quantization_config")) {
        throw Error("{}: quantized checkpoints are not supported (quantization_config {})", source,
                    q->dump());
    }
    if (const json* act = field(j, "hidden_act");
        act && !(act->is_string() && act->get<std::string>() == "silu")) {
        throw Error("{}: hidden_act {} is not supported (only \"silu\")", source, act->dump());
    }
    if (optional_bool(j, "mlp_bias", false, source)) {
        throw Error("{}: mlp_bias true is not supported (no Llama-family checkpoint uses it)", source);
    }

    c.hidden_size = required_int(j, "hidden_size", source);
    c.intermediate_size = required_int(j, "intermediate_size", source);
    c.n_layers = required_int(j, "num_hidden_layers", source);
    c.n_heads = required_int(j, "num_attention_heads", source);
    c.n_kv_heads = optional_int(j, "num_key_value_heads", c.n_heads, source);
    c.vocab_size = required_int(j, "vocab_size", source);
    c.max_position_embeddings =
        optional_int(j, "max_position_embeddings", defaults.max_position_embeddings, source);
    c.rms_norm_eps = optional_double(j, "rms_norm_eps", 1e-6, source);
    c.tie_word_embeddings = optional_bool(j, "tie_word_embeddings", false, source);
    c.torch_dtype = parse_dtype(j, source);

    auto positive = [&](int v, const char* key) {
        if (v <= 0) throw Error("{}: '{}' must be positive, got {}", source, key, v);
    };
    positive(c.hidden_size, "hidden_size");
    positive(c.intermediate_size, "intermediate_size");
    positive(c.n_layers, "num_hidden_layers");
    positive(c.n_heads, "num_attention_heads");
    positive(c.n_kv_heads, "num_key_value_heads");
    positive(c.vocab_size, "vocab_size");
    positive(c.max_position_embeddings, "max_position_embeddings");
    if (!(c.rms_norm_eps > 0))
        throw Error("{}: 'rms_norm_eps' must be positive, got {}", source, c.rms_norm_eps);
    if (c.n_heads % c.n_kv_heads != 0) {
        throw Error("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", source,
                    c.n_heads, c.n_kv_heads);
    }

    // Qwen3Config's head_dim defaults to 128; the others derive it from hidden_size.
    if (const json* hd = field(j, "head_dim")) {
        c.head_dim = as_int(*hd, "head_dim", source);
    } else if (c.arch == Arch::Qwen3) {
        c.head_dim = 128;
    } else {
        if (c.hidden_size % c.n_heads != 0) {
            throw Error(
                "{}: hidden_size ({}) is not a multiple of num_attention_heads ({}) and no head_dim is given",
                source, c.hidden_size, c.n_heads);
        }
        c.head_dim = c.hidden_size / c.n_heads;
    }
    positive(c.head_dim, "head_dim");
    if (c.head_dim % 2 != 0) throw Error("{}: head_dim must be even for RoPE, got {}", source, c.head_dim);

    switch (c.arch) {
        case Arch::Llama:
        case Arch::Qwen3:
            c.attention_bias = optional_bool(j, "attention_bias", false, source);
            break;
        case Arch::Mistral:
            c.attention_bias = false;
            break;
        case Arch::Qwen2:
            c.attention_bias = true;
            break;  // Qwen2Attention always has q/k/v biases
    }
    c.qk_norm = c.arch == Arch::Qwen3;

    parse_rope(j, c, source);

    // Absent: the class default; present but null: none.
    if (!j.contains("bos_token_id")) {
        c.bos_token_id = defaults.bos_token_id;
    } else if (const json* b = field(j, "bos_token_id")) {
        c.bos_token_id = bos_id(*b, source);
    }
    if (!j.contains("eos_token_id")) {
        if (defaults.eos_token_id >= 0) c.eos_token_ids = {defaults.eos_token_id};
    } else if (const json* e = field(j, "eos_token_id")) {
        c.eos_token_ids = token_id_list(*e, "eos_token_id", source);
    }

    warn_sliding_window(j, c, source);
    return c;
}

namespace {

json read_json_file(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot open {}", path.string());
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return json::parse(ss.str());
    } catch (const json::parse_error& e) {
        throw Error("{}: malformed JSON: {}", path.string(), e.what());
    }
}

GenerationDefaults parse_generation_defaults(const json& g, const std::string& source) {
    GenerationDefaults d;
    if (field(g, "do_sample")) d.do_sample = optional_bool(g, "do_sample", true, source);
    // A number in a range, or nothing when the key is absent or null.
    auto number = [&](const char* key, auto in_range, const char* range) -> std::optional<double> {
        const json* v = field(g, key);
        if (!v) return std::nullopt;
        const double x = as_double(*v, key, source);
        if (!in_range(x)) throw Error("{}: '{}' must be {}, got {}", source, key, range, x);
        return x;
    };
    d.temperature = number(
        "temperature", [](double x) { return x >= 0; }, ">= 0");
    d.top_p = number(
        "top_p", [](double x) { return x > 0 && x <= 1; }, "in (0, 1]");
    d.min_p = number(
        "min_p", [](double x) { return x >= 0 && x <= 1; }, "in [0, 1]");
    d.repetition_penalty = number(
        "repetition_penalty", [](double x) { return x > 0; }, "> 0");
    if (const json* v = field(g, "top_k")) d.top_k = as_int(*v, "top_k", source);
    return d;
}

}  // namespace

ModelConfig load_model_config(const std::filesystem::path& dir) {
    if (!std::filesystem::is_directory(dir)) throw Error("{}: not a model directory", dir.string());
    const auto config_path = dir / "config.json";
    if (!std::filesystem::exists(config_path))
        throw Error("{}: no config.json in the model directory", dir.string());
    ModelConfig c = parse_model_config(read_json_file(config_path), config_path.string());

    // generation_config.json is what HF generate() stops on; its ids override config.json's.
    const auto gen_path = dir / "generation_config.json";
    if (std::filesystem::exists(gen_path)) {
        const json g = read_json_file(gen_path);
        const std::string source = gen_path.string();
        if (!g.is_object()) throw Error("{}: expected a JSON object", source);
        if (const json* b = field(g, "bos_token_id")) c.bos_token_id = bos_id(*b, source);
        if (const json* e = field(g, "eos_token_id"))
            c.eos_token_ids = token_id_list(*e, "eos_token_id", source);
        c.generation = parse_generation_defaults(g, source);
    }
    for (int id : c.eos_token_ids) {
        if (id < 0 || id >= c.vocab_size) {
            throw Error("{}: eos_token_id {} is outside the vocabulary [0, {})", config_path.string(), id,
                        c.vocab_size);
        }
    }
    if (c.bos_token_id >= c.vocab_size) {
        throw Error("{}: bos_token_id {} is outside the vocabulary [0, {})", config_path.string(),
                    c.bos_token_id, c.vocab_size);
    }
    return c;
}

}  // namespace dsa
