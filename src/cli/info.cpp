// `dsa info -m DIR [-c N]`: what the model is, how big it is, and what its KV cache costs at N tokens.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "model/model.h"
#include "util/error.h"

namespace dsa::cli {

namespace {

struct InfoOptions {
    std::string model_dir;
    int ctx_size = 0;  // 0: max_position_embeddings
};

constexpr int kPageSize = 16;  // the default page size P of generate/bench

// 12.3 M, 1.24 B: like the parameter counts in model names.
std::string count_string(int64_t n) {
    if (n >= 1'000'000'000) return fmt::format("{:.2f} B", n / 1e9);
    if (n >= 1'000'000) return fmt::format("{:.1f} M", n / 1e6);
    if (n >= 1'000) return fmt::format("{:.1f} K", n / 1e3);
    return fmt::format("{}", n);
}

// Binary units, with the exact byte count alongside.
std::string bytes_string(double b) {
    if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
    if (b >= 1024.0 * 1024) return fmt::format("{:.2f} MiB", b / (1024.0 * 1024));
    if (b >= 1024.0) return fmt::format("{:.2f} KiB", b / 1024.0);
    return fmt::format("{:.0f} B", b);
}

std::string rope_string(const ModelConfig& c) {
    const RopeScaling& r = c.rope_scaling;
    std::string s = fmt::format("theta {}", c.rope_theta);
    switch (r.type) {
        case RopeType::Default:
            s += ", no scaling";
            break;
        case RopeType::Linear:
            s += fmt::format(", linear x{}", r.factor);
            break;
        case RopeType::Llama3:
            s += fmt::format(", llama3 x{} (low {}, high {}, original {})", r.factor, r.low_freq_factor,
                             r.high_freq_factor, r.original_max_position_embeddings);
            break;
        case RopeType::Yarn:
            s +=
                fmt::format(", yarn x{} (beta {}/{}, original {}, attention factor {:.4f})", r.factor,
                            r.beta_fast, r.beta_slow, r.original_max_position_embeddings, r.attention_factor);
            break;
    }
    return s;
}

int run_info(const InfoOptions& o) {
    const std::filesystem::path dir = o.model_dir;
    if (!std::filesystem::is_directory(dir)) throw Error("-m {}: no such model directory", o.model_dir);
    const Model m = load_model(dir);
    const ModelConfig& c = m.config;
    const int ctx = o.ctx_size > 0 ? o.ctx_size : c.max_position_embeddings;

    fmt::print("model          {}\n", dir.string());
    fmt::print("architecture   {}\n", c.arch_name);
    fmt::print("layers         {}\n", c.n_layers);
    fmt::print("hidden         {} (intermediate {})\n", c.hidden_size, c.intermediate_size);
    fmt::print("heads          {} q / {} kv, head_dim {}, group size {}\n", c.n_heads, c.n_kv_heads,
               c.head_dim, c.group_size());
    fmt::print("vocab          {}\n", c.vocab_size);
    fmt::print("rope           {}\n", rope_string(c));
    fmt::print("max positions  {}\n", c.max_position_embeddings);
    fmt::print("tie embeddings {}\n", c.tie_word_embeddings ? "yes" : "no");
    fmt::print("q/k/v bias     {}, qk norm {}\n", c.attention_bias ? "yes" : "no", c.qk_norm ? "yes" : "no");
    fmt::print("parameters     {} ({})\n", count_string(m.parameter_count()), m.parameter_count());
    fmt::print("weights        {}, {} ({} bytes)\n", dtype_name(m.weight_dtype()),
               bytes_string(m.weight_bytes()), m.weight_bytes());

    // KV cache at ctx tokens in pages of P: K and V per token and layer are n_kv_heads * head_dim elements
    // each; page metadata per (layer, page, kv head) is kmin, kmax [D] (fp32 on the CPU; bf16 on the GPU,
    // where the keys are bf16), ksum fp32 [D] and an int32 count.
    const double pages = std::ceil(static_cast<double>(ctx) / kPageSize);
    const double kv_elems = 2.0 * c.n_layers * c.n_kv_heads * c.head_dim * pages * kPageSize;
    const double page_heads = static_cast<double>(c.n_layers) * c.n_kv_heads * pages;
    const double meta_gpu = page_heads * (2.0 * c.head_dim * 2 + c.head_dim * 4 + 4);
    const double meta_cpu = page_heads * (3.0 * c.head_dim * 4 + 4);
    const double gpu = kv_elems * 2 + meta_gpu;  // bf16 K/V
    const double cpu = kv_elems * 4 + meta_cpu;  // fp32 K/V (CPU reference backend)
    fmt::print("kv cache       {} tokens = {:.0f} pages of {}{}\n", ctx, pages, kPageSize,
               ctx > c.max_position_embeddings ? " (beyond max_position_embeddings)" : "");
    fmt::print("  gpu (bf16)   {} = K/V {} + page metadata {} ({:.0f} bytes)\n", bytes_string(gpu),
               bytes_string(kv_elems * 2), bytes_string(meta_gpu), gpu);
    fmt::print("  cpu (fp32)   {} = K/V {} + page metadata {} ({:.0f} bytes)\n", bytes_string(cpu),
               bytes_string(kv_elems * 4), bytes_string(meta_cpu), cpu);
    fmt::print("  per token    {} bf16 / {} fp32 (K/V only)\n",
               bytes_string(kv_elems * 2 / (pages * kPageSize)),
               bytes_string(kv_elems * 4 / (pages * kPageSize)));
    return 0;
}

}  // namespace

void add_info_command(CLI::App& root, Action& action) {
    auto opts = std::make_shared<InfoOptions>();
    CLI::App* cmd =
        root.add_subcommand("info", "Print a model's configuration, size and KV-cache memory plan");
    cmd->add_option("-m,--model", opts->model_dir, "Model directory (config.json + *.safetensors)")
        ->required();
    cmd->add_option("-c,--ctx-size", opts->ctx_size,
                    "Context size in tokens (default: max_position_embeddings)")
        ->check(CLI::PositiveNumber);
    cmd->callback([opts, &action] { action = [opts] { return run_info(*opts); }; });
}

}  // namespace dsa::cli
