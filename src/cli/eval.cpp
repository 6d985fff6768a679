// `dsa eval passkey` and `dsa eval ppl`: long-context quality of each attention policy. Results go to
// stdout (a markdown table, or one JSON object with --json); progress lines go to stderr.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/attn_flags.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/generator.h"
#include "eval/book_text.h"
#include "eval/data_paths.h"
#include "eval/eval_report.h"
#include "eval/flag_lists.h"
#include "eval/passkey.h"
#include "eval/passkey_prompt.h"
#include "eval/perplexity.h"
#include "eval/policy_runs.h"
#include "eval/prompt_bos.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace dsa::cli {

namespace {

namespace fs = std::filesystem;

struct CommonFlags {
    std::string model_dir;
    std::string attn = "full";
    std::string budget;  // empty: the presets' budgets
    AttnOverrideFlags overrides;
    std::string device = "auto";
    int threads = 0;
    int batch_size = 512;
    bool json = false;
};

struct PasskeyFlags {
    CommonFlags common;
    std::string ctx = "4096";
    std::string depth = "0,0.25,0.5,0.75,1";
    int trials = 5;
    int64_t seed = 42;
    std::string text;  // empty: the held-out book of the shared data
};

struct PplFlags {
    CommonFlags common;
    std::string file;
    int ctx = 2048;
    int chunks = -1;
};

void add_common_flags(CLI::App* cmd, CommonFlags& f) {
    cmd->add_option("-m,--model", f.model_dir, "Model directory (config.json, *.safetensors, tokenizer.json)")
        ->required();
    cmd->add_option(
           "--attn", f.attn,
           "Attention policies, comma-separated: preset names (configs/NAME.json) or paths to .json presets")
        ->capture_default_str();
    cmd->add_option(
        "--budget", f.budget,
        "Token budgets, comma-separated; every non-full policy runs once per budget (default: the "
        "preset's)");
    add_attn_override_flags(cmd, f.overrides);
    cmd->add_option("--device", f.device, "cpu, cuda or auto (cuda when a device exists)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", f.threads, "CPU threads; 0: all cores")->capture_default_str();
    cmd->add_option("-b,--batch-size", f.batch_size, "Tokens per prefill chunk (>= 1)")
        ->capture_default_str();
    cmd->add_flag("--json", f.json, "Print one JSON object instead of the table");
}

void validate_common(const CommonFlags& f) {
    if (f.device != "cpu" && f.device != "cuda" && f.device != "auto") {
        throw Error("--device must be cpu, cuda or auto, got '{}'", f.device);
    }
    if (f.threads < 0) throw Error("-t/--threads must be >= 0 (0: all cores), got {}", f.threads);
    if (f.batch_size < 1) throw Error("-b/--batch-size must be >= 1, got {}", f.batch_size);
    if (f.device == "cuda") {
        if (!cuda_compiled()) {
            throw Error(
                "--device cuda: this dsa was built without CUDA support (rebuild with -DDSA_CUDA=ON)");
        }
        if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device found");
    }
}

// Every --attn item loaded and every budget applied before the model is read, so a typo costs nothing.
std::vector<PolicyRun> policy_runs(const CommonFlags& f) {
    const std::vector<int> budgets =
        f.budget.empty() ? std::vector<int>{} : parse_int_list(f.budget, "--budget", 1);
    return expand_policy_runs(split_list(f.attn, "--attn"), budgets, preset_search_dirs(),
                              overrides_of(f.overrides, nullptr));
}

void check_model_dir(const std::string& dir) {
    if (!fs::exists(dir)) throw Error("model directory {} does not exist (-m)", dir);
    if (!fs::is_directory(dir)) throw Error("-m {} is not a directory", dir);
}

void warn_past_trained_context(const Model& model, int ctx, const char* flag) {
    const int trained = model.config.max_position_embeddings;
    if (trained > 0 && ctx > trained) {
        std::fprintf(stderr, "dsa: warning: %s %d is longer than the model's max_position_embeddings %d\n",
                     flag, ctx, trained);
    }
}

int run_passkey_command(const PasskeyFlags& f) {
    validate_common(f.common);
    const std::vector<int> contexts = parse_int_list(f.ctx, "--ctx", 1);
    const std::vector<double> depths = parse_real_list(f.depth, "--depth", 0.0, 1.0);
    if (f.trials < 1) throw Error("--trials must be >= 1, got {}", f.trials);
    if (f.seed < 0) throw Error("-s/--seed must be >= 0, got {}", f.seed);
    const std::vector<PolicyRun> runs = policy_runs(f.common);
    const fs::path text_file = f.text.empty() ? default_eval_book() : fs::path(f.text);
    const std::string text = read_book_text(text_file, "--text");
    check_model_dir(f.common.model_dir);

    ThreadPool::set_global_threads(f.common.threads);
    const Tokenizer tok = Tokenizer::from_model_dir(f.common.model_dir);
    const std::vector<int> filler = tok.encode(text, false);
    const std::vector<PasskeyTrial> trials =
        draw_passkey_trials(static_cast<uint64_t>(f.seed), f.trials, filler.size());
    // Every context must hold the fixed parts of every trial's prompt; checked before any run starts.
    const PasskeyParts parts = encode_passkey_parts(tok);
    int answer_room = 0;
    for (const PasskeyTrial& t : trials) {
        const int overhead =
            passkey_overhead(parts, static_cast<int>(tok.encode(passkey_fact(t.key), false).size()));
        for (const int ctx : contexts) {
            if (ctx <= overhead) {
                throw Error(
                    "--ctx {}: too short for a passkey prompt, which needs {} tokens besides the filler", ctx,
                    overhead);
            }
        }
        answer_room = std::max(answer_room, passkey_answer_budget(tok, t.key));
    }
    const Model model = load_model(f.common.model_dir);
    const int max_ctx = *std::max_element(contexts.begin(), contexts.end());
    warn_past_trained_context(model, max_ctx, "--ctx");

    PasskeyReport report;
    report.model = f.common.model_dir;
    report.text = text_file.string();
    report.seed = static_cast<uint64_t>(f.seed);
    report.trials = f.trials;
    report.contexts = contexts;
    report.depths = depths;
    PasskeySettings settings;
    settings.contexts = contexts;
    settings.depths = depths;
    settings.batch = f.common.batch_size;
    settings.eos_ids = collect_eos_ids(model.config.eos_token_ids, tok.eos_id());
    for (const PolicyRun& run : runs) {
        BackendOptions opts;
        opts.context = max_ctx + answer_room;
        opts.threads = f.common.threads;
        const std::unique_ptr<Backend> backend =
            make_policy_backend(f.common.device, model, opts, run.policy);
        report.device = backend->name();
        settings.label = run.label();
        std::fprintf(stderr, "dsa: passkey [%s] %s on %s\n", settings.label.c_str(),
                     describe_policy(run.policy).c_str(), backend->name().c_str());
        report.runs.push_back({run, run_passkey(*backend, tok, filler, trials, settings)});
    }
    const std::string out = f.common.json ? passkey_json(report).dump(2) + "\n" : passkey_table(report);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

int run_ppl_command(const PplFlags& f) {
    validate_common(f.common);
    if (f.file.empty()) throw Error("-f/--file FILE is required: the text to score");
    if (f.ctx < 4) throw Error("-c/--ctx-size must be >= 4 (a window scores its second half), got {}", f.ctx);
    if (f.chunks < -1 || f.chunks == 0) throw Error("--chunks must be >= 1 (or -1: all), got {}", f.chunks);
    const std::vector<PolicyRun> runs = policy_runs(f.common);
    const std::string text = read_book_text(f.file, "-f");
    check_model_dir(f.common.model_dir);

    ThreadPool::set_global_threads(f.common.threads);
    const Tokenizer tok = Tokenizer::from_model_dir(f.common.model_dir);
    const std::vector<int> tokens = tok.encode(text, false);
    const int bos = prompt_bos(tok);
    const int available = count_ppl_windows(tokens.size(), f.ctx, bos);
    if (available < 1) {
        throw Error("-f {}: the text has {} tokens, fewer than one window of -c {} tokens", f.file,
                    tokens.size(), f.ctx);
    }
    const Model model = load_model(f.common.model_dir);
    warn_past_trained_context(model, f.ctx, "-c");

    PplReport report;
    report.model = f.common.model_dir;
    report.file = f.file;
    report.ctx = f.ctx;
    report.text_tokens = static_cast<int64_t>(tokens.size());
    report.windows_available = available;
    for (const PolicyRun& run : runs) {
        BackendOptions opts;
        opts.context = f.ctx;
        opts.threads = f.common.threads;
        const std::unique_ptr<Backend> backend =
            make_policy_backend(f.common.device, model, opts, run.policy);
        report.device = backend->name();
        PplSettings settings;
        settings.ctx = f.ctx;
        settings.max_windows = f.chunks;
        settings.batch = f.common.batch_size;
        settings.decode_scored = run.policy.kind != PolicyKind::Full;
        settings.bos = bos;
        settings.label = run.label();
        std::fprintf(stderr, "dsa: ppl [%s] %s on %s, %d of %d windows of %d tokens\n",
                     settings.label.c_str(), describe_policy(run.policy).c_str(), backend->name().c_str(),
                     f.chunks < 0 ? available : std::min(available, f.chunks), available, f.ctx);
        report.runs.push_back({run, run_perplexity(*backend, tokens, settings)});
    }
    const std::string out = f.common.json ? ppl_json(report).dump(2) + "\n" : ppl_table(report);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

constexpr const char* kPasskeyFooter = R"(
Prompt: BOS + intro + book filler with the fact " The pass key is KEY. Remember it. KEY is the pass key. "
inserted after round(depth * filler) filler tokens + "\nWhat is the pass key? The pass key is", exactly CTX
tokens (the template of tools/train_model.py). Keys: 5 digits from -s, one per trial, shared by every
context, depth and policy. The answer is decoded greedily; a trial is correct when the first run of digits
in it equals the key.
JSON (--json): command, model, device, text, seed, trials, contexts, depths, runs[]: attn, policy
(description), budget (tokens; null for full), accuracy (all cells), cells[]: ctx, depth, trials, correct,
accuracy, attended_tokens_mean (per layer and KV head per decode step), answers[]: key, output, correct.)";

constexpr const char* kPplFooter = R"(
Like llama-perplexity: the text (Gutenberg header/footer stripped, CRLF -> LF) is cut into windows of CTX
tokens starting with BOS; each window runs on a fresh sequence and only its second half is scored. PPL =
exp(mean NLL), error = PPL * sqrt(var(NLL) / (N - 1)). Full attention scores in chunks; sparse policies score
one token per decode step.
JSON (--json): command, model, device, file, ctx, text_tokens, windows_available, runs[]: attn, policy
(description), budget (tokens; null for full), ppl, ppl_error, nll_mean, tokens_scored, windows,
attended_tokens_mean (per layer and KV head per scored token), seconds.)";

}  // namespace

void add_eval_command(CLI::App& root, Action& action) {
    CLI::App* eval =
        root.add_subcommand("eval", "Long-context quality: passkey retrieval accuracy, perplexity");
    eval->require_subcommand(1);

    auto pk = std::make_shared<PasskeyFlags>();
    CLI::App* passkey =
        eval->add_subcommand("passkey", "Passkey retrieval accuracy per policy, context and depth");
    add_common_flags(passkey, pk->common);
    passkey->add_option("--ctx", pk->ctx, "Prompt lengths in tokens, comma-separated")->capture_default_str();
    passkey->add_option("--depth", pk->depth, "Relative depths of the key in [0, 1], comma-separated")
        ->capture_default_str();
    passkey->add_option("--trials", pk->trials, "Keys per (context, depth)")->capture_default_str();
    passkey->add_option("-s,--seed", pk->seed, "Seed of the keys and filler offsets")->capture_default_str();
    passkey->add_option(
        "--text", pk->text,
        "Filler book (default: ../shared/data/texts/pride-and-prejudice.txt, held out of training)");
    passkey->footer(kPasskeyFooter);
    passkey->callback([pk, &action] { action = [pk] { return run_passkey_command(*pk); }; });

    auto pp = std::make_shared<PplFlags>();
    CLI::App* ppl =
        eval->add_subcommand("ppl", "Perplexity over a long text per policy (like llama-perplexity)");
    add_common_flags(ppl, pp->common);
    ppl->add_option("-f,--file", pp->file, "Text file to score (required)");
    ppl->add_option("-c,--ctx-size", pp->ctx, "Window length in tokens (the second half is scored)")
        ->capture_default_str();
    ppl->add_option("--chunks", pp->chunks, "Windows to score; -1: all")->capture_default_str();
    ppl->footer(kPplFooter);
    ppl->callback([pp, &action] { action = [pp] { return run_ppl_command(*pp); }; });
}

}  // namespace dsa::cli
