// `dsa generate`: text generation from a prompt, streamed to stdout, with llama.cpp's flag names and
// timing lines (on stderr, so stdout holds only the text).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cli/attn_flags.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/generator.h"
#include "model/model.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/thread_pool.h"
#include "util/timer.h"

namespace dsa::cli {

namespace {

namespace fs = std::filesystem;

struct GenerateFlags {
    std::string model_dir;
    std::string prompt;
    std::string prompt_file;
    int n_predict = 128;
    int ctx_size = 0;
    int batch_size = 0;  // 0: the backend's prefill chunk
    int64_t seed = -1;
    float temp = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    std::string device = "auto";
    int threads = 0;
    bool no_display_prompt = false;
    std::string attn = "full";
    int budget = 0;
    AttnOverrideFlags attn_flags;
    CLI::Option* budget_opt = nullptr;
    CLI::Option* prompt_opt = nullptr;
    CLI::Option* file_opt = nullptr;
    CLI::Option* temp_opt = nullptr;
    CLI::Option* top_k_opt = nullptr;
    CLI::Option* top_p_opt = nullptr;
    CLI::Option* min_p_opt = nullptr;
    CLI::Option* repeat_penalty_opt = nullptr;
};

// The sampler's settings: each flag given on the command line, else the model's generation_config.json
// value, else the flag's default (llama.cpp's). `from_model` lists the generation_config.json keys used.
struct Sampling {
    SamplerParams params;
    std::vector<std::string> from_model;
};

Sampling resolve_sampling(const GenerateFlags& f, const GenerationDefaults& g) {
    Sampling s;
    SamplerParams& p = s.params;
    auto pick = [&](const CLI::Option* opt, auto flag, const auto& model_value, const char* key) {
        using T = decltype(flag);
        if (opt->count() > 0 || !model_value) return flag;
        s.from_model.emplace_back(key);
        return static_cast<T>(*model_value);
    };
    if (f.temp_opt->count() == 0 && g.do_sample == false) {  // HF: greedy, whatever the temperature says
        p.temperature = 0.0f;
        s.from_model.emplace_back("do_sample");
    } else {
        p.temperature = pick(f.temp_opt, f.temp, g.temperature, "temperature");
    }
    p.top_k = pick(f.top_k_opt, f.top_k, g.top_k, "top_k");
    p.top_p = pick(f.top_p_opt, f.top_p, g.top_p, "top_p");
    p.min_p = pick(f.min_p_opt, f.min_p, g.min_p, "min_p");
    p.repeat_penalty =
        pick(f.repeat_penalty_opt, f.repeat_penalty, g.repetition_penalty, "repetition_penalty");
    return s;
}

std::string describe_sampling(const Sampling& s) {
    const SamplerParams& p = s.params;
    std::string text = p.temperature == 0.0f
                           ? std::string("greedy")
                           : fmt::format("temp {:.2f}, top-k {}, top-p {:.2f}, min-p {:.2f}", p.temperature,
                                         p.top_k, p.top_p, p.min_p);
    text += fmt::format(", repeat-penalty {:.2f}", p.repeat_penalty);
    if (!s.from_model.empty())
        text += fmt::format(" ({} from generation_config.json)", fmt::join(s.from_model, ", "));
    return text;
}

// Every value is checked here, before anything is loaded, so a bad flag costs nothing and gives one line.
void validate(const GenerateFlags& f) {
    const bool has_prompt = f.prompt_opt->count() > 0;
    const bool has_file = f.file_opt->count() > 0;
    if (has_prompt == has_file) throw Error("give exactly one of -p/--prompt TEXT or -f/--file FILE");
    if (f.n_predict < -1) throw Error("-n/--n-predict must be >= -1 (-1: until EOS), got {}", f.n_predict);
    if (f.ctx_size < 0)
        throw Error("-c/--ctx-size must be >= 0 (0: the model's context), got {}", f.ctx_size);
    if (f.batch_size < 0)
        throw Error("-b/--batch-size must be >= 0 (0: the backend's prefill chunk), got {}", f.batch_size);
    if (f.seed < -1) throw Error("-s/--seed must be >= 0 (or -1: random), got {}", f.seed);
    if (!(f.temp >= 0)) throw Error("--temp must be >= 0 (0: greedy), got {}", f.temp);
    if (!(f.top_p > 0 && f.top_p <= 1)) throw Error("--top-p must be in (0, 1], got {}", f.top_p);
    if (!(f.min_p >= 0 && f.min_p <= 1)) throw Error("--min-p must be in [0, 1], got {}", f.min_p);
    if (!(f.repeat_penalty > 0)) throw Error("--repeat-penalty must be > 0, got {}", f.repeat_penalty);
    if (f.repeat_last_n < -1) {
        throw Error("--repeat-last-n must be >= -1 (-1: the whole context), got {}", f.repeat_last_n);
    }
    if (f.device != "cpu" && f.device != "cuda" && f.device != "auto") {
        throw Error("--device must be cpu, cuda or auto, got '{}'", f.device);
    }
    if (f.threads < 0) throw Error("-t/--threads must be >= 0 (0: all cores), got {}", f.threads);
}

// Fails before the (possibly large) model is read when the CUDA device cannot exist.
void check_device_available(const std::string& device) {
    if (device != "cuda") return;
    if (!cuda_compiled()) {
        throw Error("--device cuda: this dsa was built without CUDA support (rebuild with -DDSA_CUDA=ON)");
    }
    if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device found");
}

std::string read_prompt_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in || fs::is_directory(path)) throw Error("cannot read prompt file {}", path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error("cannot read prompt file {}", path);
    return text;
}

uint64_t resolve_seed(int64_t seed) {
    if (seed >= 0) return static_cast<uint64_t>(seed);
    // Time-based, kept to 32 bits so it is easy to copy back into -s.
    const auto ns = std::chrono::system_clock::now().time_since_epoch().count();
    return static_cast<uint64_t>(ns) & 0xffffffffu;
}

// Tokenizer errors (invalid UTF-8) say what is wrong with the text; this adds where the text came from.
std::vector<int> encode_prompt(const Tokenizer& tokenizer, const std::string& prompt,
                               const GenerateFlags& f) {
    try {
        return tokenizer.encode(prompt, true);
    } catch (const Error& e) {
        if (f.file_opt->count() > 0) throw Error("prompt file {}: {}", f.prompt_file, e.what());
        throw Error("-p/--prompt: {}", e.what());
    }
}

void write_out(const std::string& text) {
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

int run_generate(const GenerateFlags& f) {
    validate(f);
    const AttentionPolicy policy = resolve_policy(
        f.attn, overrides_of(f.attn_flags, f.budget_opt->count() > 0 ? &f.budget : nullptr), false);
    check_device_available(f.device);
    const std::string prompt = f.file_opt->count() > 0 ? read_prompt_file(f.prompt_file) : f.prompt;
    if (!fs::exists(f.model_dir)) throw Error("model directory {} does not exist (-m)", f.model_dir);
    if (!fs::is_directory(f.model_dir)) throw Error("-m {} is not a directory", f.model_dir);

    // The pool is sized once, on first use, so the thread count must be set before any backend exists.
    ThreadPool::set_global_threads(f.threads);

    const double t_load = now_ms();
    const Model model = load_model(f.model_dir);
    const Tokenizer tokenizer = Tokenizer::from_model_dir(f.model_dir);
    BackendOptions backend_opts;
    backend_opts.context = f.ctx_size;
    backend_opts.threads = f.threads;
    backend_opts.page_size = policy.page_size;
    backend_opts.attention = policy;
    const std::unique_ptr<Backend> backend = make_backend(f.device, model, backend_opts);
    const double load_ms = now_ms() - t_load;

    const std::vector<int> prompt_ids = encode_prompt(tokenizer, prompt, f);
    if (prompt_ids.empty()) {
        throw Error("the prompt is empty and the tokenizer adds no BOS token: give some prompt text");
    }
    const int capacity = backend->context_capacity();
    if (static_cast<int64_t>(prompt_ids.size()) > capacity) {
        throw Error("prompt has {} tokens but the context holds {} (-c)", prompt_ids.size(), capacity);
    }

    // Printed only once every input is known good, so a bad input leaves exactly one line on stderr.
    const uint64_t seed = resolve_seed(f.seed);
    std::fprintf(stderr, "dsa: seed = %llu\n", static_cast<unsigned long long>(seed));
    std::fprintf(stderr, "dsa: attention = %s\n", describe_policy(policy).c_str());
    const Sampling sampling = resolve_sampling(f, model.config.generation);
    std::fprintf(stderr, "dsa: sampling = %s\n", describe_sampling(sampling).c_str());
    SamplerParams sp = sampling.params;
    sp.repeat_last_n = f.repeat_last_n < 0 ? capacity : f.repeat_last_n;
    sp.seed = seed;
    Sampler sampler(sp);

    GenerateParams gp;
    gp.n_predict = f.n_predict;
    gp.batch = f.batch_size;
    gp.eos_ids = collect_eos_ids(model.config.eos_token_ids, tokenizer.eos_id());

    if (!f.no_display_prompt) write_out(prompt);
    StreamDecoder decoder(tokenizer, prompt_ids);
    GenerateResult result =
        generate(*backend, sampler, prompt_ids, gp, [&](int id) { write_out(decoder.push(id)); });
    write_out(decoder.flush());
    write_out("\n");

    if (result.stop == StopReason::ContextFull) {
        std::fprintf(stderr, "dsa: context full (%d tokens): generation stopped\n", capacity);
    }
    result.timings.load_ms = load_ms;
    std::fprintf(stderr, "\n");
    print_timings(stderr, result.timings);
    std::fprintf(stderr,
                 "dsa: backend = %s, threads = %d, context = %d, attended tokens per step = %.1f (mean of %d "
                 "decode steps)\n",
                 backend->name().c_str(), ThreadPool::global().size(), capacity,
                 result.timings.attended_mean(), result.timings.eval_runs);
    return 0;
}

}  // namespace

void add_generate_command(CLI::App& root, Action& action) {
    auto flags = std::make_shared<GenerateFlags>();
    CLI::App* cmd = root.add_subcommand("generate", "Generate text from a prompt (streamed to stdout)");
    cmd->add_option("-m,--model", flags->model_dir,
                    "Model directory (config.json, *.safetensors, tokenizer.json)")
        ->required();
    flags->prompt_opt = cmd->add_option("-p,--prompt", flags->prompt, "Prompt text (exactly one of -p/-f)");
    flags->file_opt =
        cmd->add_option("-f,--file", flags->prompt_file, "Read the prompt from FILE (exactly one of -p/-f)");
    cmd->add_option("-n,--n-predict", flags->n_predict, "Tokens to generate; -1: until EOS or a full context")
        ->capture_default_str();
    cmd->add_option("-c,--ctx-size", flags->ctx_size,
                    "Context size in tokens; 0: the model's max_position_embeddings (capped by memory)")
        ->capture_default_str();
    cmd->add_option("-b,--batch-size", flags->batch_size,
                    "Prompt tokens per prefill chunk; 0: the backend's (512 on the CPU, 8192 on CUDA)")
        ->capture_default_str();
    cmd->add_option("-s,--seed", flags->seed, "Sampling seed; -1: random from the time (printed on stderr)")
        ->capture_default_str();
    // A sampling flag: left out, the model's generation_config.json `keys` give its value, else its default.
    const auto sampling_option = [cmd](const char* name, auto& value, const std::string& what,
                                       const std::string& keys) {
        return cmd
            ->add_option(name, value, what + "; default: generation_config.json's " + keys + ", else this")
            ->capture_default_str();
    };
    flags->temp_opt = sampling_option("--temp", flags->temp, "Temperature (>= 0; 0: greedy)",
                                      "temperature (do_sample false: 0)");
    flags->top_k_opt = sampling_option("--top-k", flags->top_k, "Top-k sampling; <= 0: disabled", "top_k");
    flags->top_p_opt =
        sampling_option("--top-p", flags->top_p, "Top-p (nucleus) sampling, in (0, 1]; 1: disabled", "top_p");
    flags->min_p_opt =
        sampling_option("--min-p", flags->min_p, "Min-p sampling, in [0, 1]; 0: disabled", "min_p");
    flags->repeat_penalty_opt =
        sampling_option("--repeat-penalty", flags->repeat_penalty, "Repetition penalty (> 0); 1: disabled",
                        "repetition_penalty");
    cmd->add_option("--repeat-last-n", flags->repeat_last_n,
                    "Tokens of history the repetition penalty looks at; 0: none, -1: the whole context")
        ->capture_default_str();
    cmd->add_option("--device", flags->device, "cpu, cuda or auto (cuda when a device exists)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", flags->threads, "CPU threads; 0: all cores")->capture_default_str();
    cmd->add_flag("--no-display-prompt", flags->no_display_prompt,
                  "Do not print the prompt before the generated text (default: print it)");
    cmd->add_option(
           "--attn", flags->attn,
           "Decode attention: a preset in configs/ (full, quest, nsa, window, oracle) or a .json path")
        ->capture_default_str();
    flags->budget_opt =
        cmd->add_option("--budget", flags->budget, "Token budget of the sparse policy (preset's)");
    add_attn_override_flags(cmd, flags->attn_flags);
    cmd->callback([flags, &action] { action = [flags] { return run_generate(*flags); }; });
}

}  // namespace dsa::cli
