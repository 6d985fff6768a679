#pragma once
// Test fixtures for the model loader: safetensors files written byte by byte (format: u64 little-endian
// header length, JSON header, data region), and tiny model directories (config.json + weights) for each
// supported architecture, whose tensor values are a known function of (name, index).
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/dtype.h"

namespace dsa::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("dsa_model_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
    write_bytes(p, j.dump(2));
}

// A safetensors file from a header text and a data region, with the header length field given explicitly
// (so tests can lie about it).
inline std::string safetensors_raw(const std::string& header, const std::string& data, uint64_t header_len) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header_len >> (8 * i)) & 0xff);
    return out + header + data;
}

struct FixtureTensor {
    std::string name;
    std::string dtype;  // "F32", "F16", "BF16" (or anything, to test rejection)
    std::vector<int64_t> shape;
    std::string bytes;
};

// A well-formed file: tensors back to back in the given order, header padded with spaces to a multiple of
// 8 bytes like the reference writer, so every tensor is aligned.
inline std::string safetensors_file(const std::vector<FixtureTensor>& tensors,
                                    const nlohmann::json& metadata = nullptr) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.is_null()) header["__metadata__"] = metadata;
    std::string data;
    for (const FixtureTensor& t : tensors) {
        header[t.name] = {{"dtype", t.dtype},
                          {"shape", t.shape},
                          {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data += t.bytes;
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    return safetensors_raw(h, data, h.size());
}

inline std::string u16_bytes(const std::vector<uint16_t>& v) {
    std::string s(v.size() * 2, '\0');
    for (size_t i = 0; i < v.size(); ++i) {
        s[2 * i] = static_cast<char>(v[i] & 0xff);
        s[2 * i + 1] = static_cast<char>(v[i] >> 8);
    }
    return s;
}

inline std::string f32_bytes(const std::vector<float>& v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), v.data(), s.size());  // x86/ARM little-endian, as safetensors is
    return s;
}

// Value i of tensor `name`: a multiple of 1/128 in [-1, 1], exact in F32, F16 and BF16, and different for
// different tensors, so a test can tell which tensor a view points at.
inline float fixture_value(const std::string& name, int64_t i) {
    const uint64_t h = std::hash<std::string>{}(name);
    return static_cast<float>(static_cast<int64_t>((h + static_cast<uint64_t>(i) * 7919u) % 257u) - 128) /
           128.0f;
}

inline std::string encode(const std::vector<float>& v, const std::string& dtype) {
    if (dtype == "F32") return f32_bytes(v);
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = dtype == "F16" ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
    return u16_bytes(h);
}

inline FixtureTensor fixture_tensor(const std::string& name, const std::string& dtype,
                                    std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = fixture_value(name, i);
    return {name, dtype, std::move(shape), encode(v, dtype)};
}

// A tiny checkpoint: config.json content plus every tensor the architecture needs.
struct TinyModel {
    nlohmann::json config;
    std::vector<FixtureTensor> tensors;

    FixtureTensor* find(const std::string& name) {
        for (FixtureTensor& t : tensors) {
            if (t.name == name) return &t;
        }
        return nullptr;
    }
    void erase(const std::string& name) {
        std::erase_if(tensors, [&](const auto& t) { return t.name == name; });
    }

    // Writes config.json and model.safetensors, or with shards > 1 model-0000i-of-0000n.safetensors and
    // model.safetensors.index.json (tensors dealt round-robin).
    void write(const std::filesystem::path& dir, int shards = 1) const {
        write_json(dir / "config.json", config);
        if (shards == 1) {
            write_bytes(dir / "model.safetensors", safetensors_file(tensors));
            return;
        }
        std::vector<std::vector<FixtureTensor>> parts(static_cast<size_t>(shards));
        nlohmann::json weight_map = nlohmann::json::object();
        for (size_t i = 0; i < tensors.size(); ++i) {
            const size_t s = i % static_cast<size_t>(shards);
            parts[s].push_back(tensors[i]);
            weight_map[tensors[i].name] = shard_name(static_cast<int>(s), shards);
        }
        for (int s = 0; s < shards; ++s) {
            write_bytes(dir / shard_name(s, shards), safetensors_file(parts[static_cast<size_t>(s)]));
        }
        write_json(dir / "model.safetensors.index.json",
                   {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}});
    }

    static std::string shard_name(int s, int n) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", s + 1, n);
        return buf;
    }
};

// arch: "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM" or "Qwen3ForCausalLM".
// hidden 32, 4 query heads / 2 kv heads of 8 (Qwen3: head_dim 16, so q_dim 64 != hidden), intermediate 48,
// 2 layers, vocab 40.
inline TinyModel tiny_model(const std::string& arch, const std::string& dtype = "BF16", bool tie = false) {
    const int hidden = 32, inter = 48, layers = 2, heads = 4, kv_heads = 2, vocab = 40;
    const bool qwen3 = arch == "Qwen3ForCausalLM";
    const bool bias = arch == "Qwen2ForCausalLM";
    const int head_dim = qwen3 ? 16 : hidden / heads;
    TinyModel m;
    const std::string model_type = arch == "LlamaForCausalLM"     ? "llama"
                                   : arch == "MistralForCausalLM" ? "mistral"
                                   : arch == "Qwen2ForCausalLM"   ? "qwen2"
                                                                  : "qwen3";
    m.config = {{"architectures", {arch}},
                {"model_type", model_type},
                {"hidden_size", hidden},
                {"intermediate_size", inter},
                {"num_hidden_layers", layers},
                {"num_attention_heads", heads},
                {"num_key_value_heads", kv_heads},
                {"vocab_size", vocab},
                {"max_position_embeddings", 256},
                {"rms_norm_eps", 1e-5},
                {"rope_theta", 10000.0},
                {"tie_word_embeddings", tie},
                {"bos_token_id", 1},
                {"eos_token_id", 2},
                {"torch_dtype", dtype == "F32" ? "float32" : (dtype == "F16" ? "float16" : "bfloat16")}};
    if (qwen3) m.config["head_dim"] = head_dim;
    const int64_t q_dim = heads * head_dim, kv_dim = kv_heads * head_dim;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, const std::string& dt) {
        m.tensors.push_back(fixture_tensor(name, dt, std::move(shape)));
    };
    add("model.embed_tokens.weight", {vocab, hidden}, dtype);
    for (int i = 0; i < layers; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        add(p + "input_layernorm.weight", {hidden}, dtype);
        add(p + "self_attn.q_proj.weight", {q_dim, hidden}, dtype);
        add(p + "self_attn.k_proj.weight", {kv_dim, hidden}, dtype);
        add(p + "self_attn.v_proj.weight", {kv_dim, hidden}, dtype);
        add(p + "self_attn.o_proj.weight", {hidden, q_dim}, dtype);
        if (bias) {
            add(p + "self_attn.q_proj.bias", {q_dim}, dtype);
            add(p + "self_attn.k_proj.bias", {kv_dim}, dtype);
            add(p + "self_attn.v_proj.bias", {kv_dim}, dtype);
        }
        if (qwen3) {
            add(p + "self_attn.q_norm.weight", {head_dim}, dtype);
            add(p + "self_attn.k_norm.weight", {head_dim}, dtype);
        }
        add(p + "post_attention_layernorm.weight", {hidden}, dtype);
        add(p + "mlp.gate_proj.weight", {inter, hidden}, dtype);
        add(p + "mlp.up_proj.weight", {inter, hidden}, dtype);
        add(p + "mlp.down_proj.weight", {hidden, inter}, dtype);
    }
    add("model.norm.weight", {hidden}, dtype);
    if (!tie) add("lm_head.weight", {vocab, hidden}, dtype);
    return m;
}

}  // namespace dsa::test
