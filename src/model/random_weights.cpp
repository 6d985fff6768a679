#include "model/random_weights.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/thread_pool.h"

namespace dsa {

namespace {

constexpr float kStd = 0.02f;
constexpr size_t kBlock =
    size_t{1} << 20;  // elements per RNG stream: the fill is the same for any thread count

uint64_t splitmix64(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// bf16 bytes of `n` values: uniform in [-a, a) with a = std * sqrt(3) (so the std is `std`), or all `fill`.
std::vector<std::byte> make_values(size_t n, uint64_t stream, float std, float fill) {
    std::vector<std::byte> bytes(n * 2);
    auto* out = reinterpret_cast<uint16_t*>(bytes.data());
    if (std == 0.0f) {
        const uint16_t v = f32_to_bf16(fill);
        ThreadPool::global().parallel_for(n, kBlock,
                                          [&](size_t b, size_t e) { std::fill(out + b, out + e, v); });
        return bytes;
    }
    const float a = std * std::sqrt(3.0f);
    const size_t blocks = (n + kBlock - 1) / kBlock;
    ThreadPool::global().parallel_for(blocks, 1, [&](size_t b0, size_t b1) {
        for (size_t b = b0; b < b1; ++b) {
            uint64_t s = stream * 0x100000001b3ull + b;
            splitmix64(s);
            const size_t end = std::min(n, (b + 1) * kBlock);
            for (size_t i = b * kBlock; i < end; i += 2) {
                const uint64_t r = splitmix64(s);
                const float u0 = static_cast<float>(r >> 40) * 0x1p-24f,
                            u1 = static_cast<float>((r >> 8) & 0xffffff) * 0x1p-24f;
                out[i] = f32_to_bf16((2.0f * u0 - 1.0f) * a);
                if (i + 1 < end) out[i + 1] = f32_to_bf16((2.0f * u1 - 1.0f) * a);
            }
        }
    });
    return bytes;
}

}  // namespace

Model make_random_model(const std::filesystem::path& config_json, uint64_t seed) {
    std::ifstream in(config_json);
    if (!in) throw Error("--random-weights: cannot open {}", config_json.string());
    nlohmann::json j;
    try {
        in >> j;
    } catch (const nlohmann::json::exception& e) {
        throw Error("--random-weights: {} is not valid JSON: {}", config_json.string(), e.what());
    }
    Model m;
    m.dir = config_json.parent_path();
    m.config = parse_model_config(j, config_json.string());
    m.config.torch_dtype = DType::BF16;
    const ModelConfig& c = m.config;
    const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim(), D = c.head_dim;

    uint64_t stream = seed * 1000003ull;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, float std, float fill = 0.0f) {
        size_t n = 1;
        for (int64_t d : shape) n *= static_cast<size_t>(d);
        m.store.add_owned(name, DType::BF16, std::move(shape), make_values(n, ++stream, std, fill));
    };
    add("model.embed_tokens.weight", {c.vocab_size, H}, kStd);
    for (int i = 0; i < c.n_layers; ++i) {
        const std::string p = fmt::format("model.layers.{}.", i);
        add(p + "input_layernorm.weight", {H}, 0.0f, 1.0f);
        add(p + "self_attn.q_proj.weight", {Q, H}, kStd);
        add(p + "self_attn.k_proj.weight", {KV, H}, kStd);
        add(p + "self_attn.v_proj.weight", {KV, H}, kStd);
        add(p + "self_attn.o_proj.weight", {H, Q}, kStd);
        if (c.attention_bias) {
            add(p + "self_attn.q_proj.bias", {Q}, kStd);
            add(p + "self_attn.k_proj.bias", {KV}, kStd);
            add(p + "self_attn.v_proj.bias", {KV}, kStd);
        }
        if (c.qk_norm) {
            add(p + "self_attn.q_norm.weight", {D}, 0.0f, 1.0f);
            add(p + "self_attn.k_norm.weight", {D}, 0.0f, 1.0f);
        }
        add(p + "post_attention_layernorm.weight", {H}, 0.0f, 1.0f);
        add(p + "mlp.gate_proj.weight", {I, H}, kStd);
        add(p + "mlp.up_proj.weight", {I, H}, kStd);
        add(p + "mlp.down_proj.weight", {H, I}, kStd);
    }
    add("model.norm.weight", {H}, 0.0f, 1.0f);
    if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, H}, kStd);
    m.weights = bind_weights(m.config, m.store);
    return m;
}

}  // namespace dsa
