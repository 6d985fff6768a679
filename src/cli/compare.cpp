// `dsa compare`: the fidelity of sparse attention policies against full attention on one prompt.
// Full attention runs first as the reference (greedy, exactly -n tokens, EOS included). Then every policy
// (x every --budget) runs twice: teacher-forced on the reference's tokens, which gives per decode step
// KL(full || policy) of the next-token distributions, top-1 agreement, tokens attended and attention
// recall; and free-running (greedy), which gives the first position where its tokens leave the reference's.
// The prompt is prefilled (densely) once per page size; every run starts from a copy of that sequence.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/attn_flags.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/generator.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace dsa::cli {

namespace {

namespace fs = std::filesystem;

struct CompareFlags {
    std::string model_dir, prompt, prompt_file, device = "cpu";
    int n_predict = 128, batch_size = 512, threads = 0;
    std::vector<std::string> attn;
    std::vector<int> budgets;
    bool json = false, verbose = false;
    AttnOverrideFlags overrides;
    CLI::Option *prompt_opt = nullptr, *file_opt = nullptr, *budget_opt = nullptr;
};

struct PolicyRun {
    std::string label;
    AttentionPolicy policy;
};

struct PolicyResult {
    std::string label;
    AttentionPolicy policy;
    double kl_mean = 0, kl_max = 0, top1 = 0, attended_mean = 0, recall_mean = 0;
    int first_divergence = -1;           // -1: the free-running tokens equal the reference's
    std::vector<double> recall_layer;    // [n_layers], 1 for dense layers
    std::vector<double> attended_layer;  // [n_layers] mean tokens attended per query head and step
};

// log_softmax of logits [V] in double.
std::vector<double> log_softmax(std::span<const float> logits) {
    const double m = *std::max_element(logits.begin(), logits.end());
    double z = 0;
    for (float x : logits) z += std::exp(x - m);
    const double lz = m + std::log(z);
    std::vector<double> out(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - lz;
    return out;
}

// KL(p || q) from log-probabilities.
double kl_divergence(const std::vector<double>& lp, const std::vector<double>& lq) {
    double kl = 0;
    for (size_t i = 0; i < lp.size(); ++i) {
        const double p = std::exp(lp[i]);
        if (p > 0) kl += p * (lp[i] - lq[i]);
    }
    return std::max(kl, 0.0);
}

// Greedy choice, ties to the lower id (the sampler's rule at --temp 0).
int argmax(std::span<const float> logits) {
    return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in || fs::is_directory(path)) throw Error("cannot read prompt file {}", path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The prompt prefilled once on a backend whose cache has the page size P; runs branch off copies of it.
struct Prefilled {
    std::unique_ptr<Backend> backend;
    Sequence prompt;
    std::vector<float> logits;  // [V] next-token logits after the prompt
};

// A backend holding two sequences of `need` tokens (the prefilled prompt and one run's copy).
Prefilled prefill_prompt(const CompareFlags& f, const Model& model, int page_size,
                         std::span<const int> prompt, int need) {
    BackendOptions o;
    o.page_size = page_size;
    o.context = 2 * ((need + page_size - 1) / page_size) * page_size;
    o.threads = f.threads;
    o.attention.page_size = page_size;
    Prefilled p;
    p.backend = make_backend("cpu", model, o);  // --device auto: the reference backend (see run_compare)
    p.logits.resize(static_cast<size_t>(model.config.vocab_size));
    prefill(*p.backend, p.prompt, prompt, f.batch_size, p.logits, false);
    return p;
}

// The reference: full attention, greedy, exactly n steps. Returns the tokens; fills the log-probabilities
// of every step [n][V].
std::vector<int> run_reference(Prefilled& pre, int n, std::vector<std::vector<double>>& logprobs) {
    Sequence seq;
    pre.backend->copy_sequence(pre.prompt, seq);
    std::vector<float> logits = pre.logits;  // [V]
    std::vector<int> tokens;
    for (int i = 0; i < n; ++i) {
        if (i > 0)
            pre.backend->forward(seq, std::span<const int>(&tokens.back(), 1), LogitsMode::Last, logits);
        logprobs.push_back(log_softmax(logits));
        tokens.push_back(argmax(logits));
    }
    pre.backend->release(seq);
    return tokens;
}

PolicyResult run_policy(Prefilled& pre, const PolicyRun& run, const std::vector<int>& ref_tokens,
                        const std::vector<std::vector<double>>& ref_logprobs) {
    PolicyResult r;
    r.label = run.label;
    r.policy = run.policy;
    Backend& backend = *pre.backend;
    const int n = static_cast<int>(ref_tokens.size());
    const int n_layers = backend.model().config.n_layers;
    r.recall_layer.assign(static_cast<size_t>(n_layers), 0.0);
    r.attended_layer.assign(static_cast<size_t>(n_layers), 0.0);

    // Teacher-forced: decode steps 1 .. n-1 see the reference's tokens (step 0 is the dense prefill's).
    Sequence seq;
    backend.set_attention(run.policy, true);
    backend.copy_sequence(pre.prompt, seq);
    std::vector<float> logits = pre.logits;  // [V]
    int agree = 0;
    for (int i = 1; i < n; ++i) {
        backend.forward(seq, std::span<const int>(&ref_tokens[static_cast<size_t>(i - 1)], 1),
                        LogitsMode::Last, logits);
        const ForwardStats st = backend.last_stats();
        r.attended_mean += st.attended_tokens;
        for (size_t l = 0; l < static_cast<size_t>(n_layers); ++l) {
            r.recall_layer[l] += st.recall.at(l);
            r.attended_layer[l] += st.attended_per_layer.at(l);
        }
        const double kl = kl_divergence(ref_logprobs[static_cast<size_t>(i)], log_softmax(logits));
        r.kl_mean += kl;
        r.kl_max = std::max(r.kl_max, kl);
        agree += argmax(logits) == ref_tokens[static_cast<size_t>(i)] ? 1 : 0;
    }
    const int steps = n - 1;
    r.kl_mean /= steps;
    r.attended_mean /= steps;
    r.top1 = 100.0 * agree / steps;
    for (double& a : r.attended_layer) a /= steps;
    int sparse_layers = 0;
    for (int l = 0; l < n_layers; ++l) {
        double& rec = r.recall_layer[static_cast<size_t>(l)];
        rec /= steps;
        if (l >= run.policy.dense_layers && run.policy.kind != PolicyKind::Full) {
            r.recall_mean += rec;
            ++sparse_layers;
        }
    }
    r.recall_mean = sparse_layers > 0 ? r.recall_mean / sparse_layers : 1.0;

    // Free-running: greedy on its own tokens.
    backend.set_attention(run.policy, false);
    backend.copy_sequence(pre.prompt, seq);
    logits = pre.logits;
    for (int i = 0; i < n; ++i) {
        const int tok = argmax(logits);
        if (tok != ref_tokens[static_cast<size_t>(i)]) {
            r.first_divergence = i;
            break;
        }
        if (i + 1 < n) backend.forward(seq, std::span<const int>(&tok, 1), LogitsMode::Last, logits);
    }
    backend.release(seq);
    return r;
}

std::vector<PolicyRun> policy_runs(const CompareFlags& f) {
    std::vector<PolicyRun> runs;
    for (const std::string& attn : f.attn) {
        // A preset file is labelled by its name without directory and extension.
        const bool is_file = attn.find('/') != std::string::npos || attn.ends_with(".json");
        const std::string label = is_file ? fs::path(attn).stem().string() : attn;
        const AttentionPolicy base = resolve_policy(attn, overrides_of(f.overrides, nullptr), true);
        if (f.budgets.empty() || base.kind == PolicyKind::Full) {
            runs.push_back({label, base});
            continue;
        }
        for (int b : f.budgets)
            runs.push_back({label, resolve_policy(attn, overrides_of(f.overrides, &b), true)});
    }
    return runs;
}

void print_json(const std::vector<PolicyResult>& results, int n_prompt, int n_gen, bool verbose) {
    nlohmann::ordered_json j;
    j["reference"] = "full";
    j["n_prompt"] = n_prompt;
    j["n_gen"] = n_gen;
    j["policies"] = nlohmann::ordered_json::array();
    for (const PolicyResult& r : results) {
        nlohmann::ordered_json p;
        p["attn"] = r.label;
        p["budget"] = r.policy.budget_tokens();
        p["kl_mean"] = r.kl_mean;
        p["kl_max"] = r.kl_max;
        p["top1_agreement"] = r.top1;
        p["first_divergence"] =
            r.first_divergence < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(r.first_divergence);
        p["attended_tokens_mean"] = r.attended_mean;
        p["recall_mean"] = r.recall_mean;
        p["policy"] = describe_policy(r.policy);
        if (verbose) {
            p["recall_per_layer"] = r.recall_layer;
            p["attended_per_layer"] = r.attended_layer;
        }
        j["policies"].push_back(p);
    }
    std::printf("%s\n", j.dump(2).c_str());
}

void print_table(const std::vector<PolicyResult>& results, int n_prompt, int n_gen, bool verbose) {
    std::printf(
        "reference: full attention, %d prompt tokens, %d generated (greedy); KL, top-1, attended and "
        "recall over the %d teacher-forced decode steps\n\n",
        n_prompt, n_gen, n_gen - 1);
    std::printf("| %-10s | %6s | %9s | %9s | %7s | %9s | %9s | %7s |\n", "attn", "budget", "KL mean",
                "KL max", "top-1 %", "first div", "attended", "recall");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(12, '-').c_str(), std::string(8, '-').c_str(),
                std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(9, '-').c_str(),
                std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(9, '-').c_str());
    for (const PolicyResult& r : results) {
        const std::string budget =
            r.policy.kind == PolicyKind::Full ? "-" : std::to_string(r.policy.budget_tokens());
        const std::string div = r.first_divergence < 0 ? "none" : std::to_string(r.first_divergence);
        std::printf("| %-10s | %6s | %9.5f | %9.5f | %7.1f | %9s | %9.1f | %7.4f |\n", r.label.c_str(),
                    budget.c_str(), r.kl_mean, r.kl_max, r.top1, div.c_str(), r.attended_mean, r.recall_mean);
    }
    if (!verbose) return;
    std::printf("\nrecall per layer (dense layers are 1), then tokens attended per layer:\n");
    for (const PolicyResult& r : results) {
        std::printf("  %-32s", describe_policy(r.policy).c_str());
        for (double v : r.recall_layer) std::printf(" %.4f", v);
        std::printf("\n  %-32s", "");
        for (double v : r.attended_layer) std::printf(" %.1f", v);
        std::printf("\n");
    }
}

int run_compare(const CompareFlags& f) {
    if ((f.prompt_opt->count() > 0) == (f.file_opt->count() > 0)) {
        throw Error("give exactly one of -p/--prompt TEXT or -f/--file FILE");
    }
    if (f.n_predict < 2)
        throw Error("-n {}: compare needs at least 2 generated tokens (one decode step)", f.n_predict);
    if (f.batch_size < 1) throw Error("-b/--batch-size must be >= 1, got {}", f.batch_size);
    if (f.threads < 0) throw Error("-t/--threads must be >= 0 (0: all cores), got {}", f.threads);
    if (f.attn.empty()) throw Error("--attn: give at least one policy");
    if (f.device != "cpu" && f.device != "auto" && f.device != "cuda")
        throw Error("--device must be cpu, cuda or auto, got '{}'", f.device);
    if (f.device == "cuda") {
        throw Error(
            "--device cuda: compare needs attention recall and sequence copies, which only the CPU backend "
            "has; use --device cpu (generate, bench and eval run every policy on CUDA)");
    }
    const std::vector<PolicyRun> runs = policy_runs(f);  // every flag checked before the model loads
    const int ref_page_size = f.overrides.page_size_opt->count() > 0 ? f.overrides.page_size : 16;
    const std::string text = f.file_opt->count() > 0 ? read_text(f.prompt_file) : f.prompt;
    if (!fs::is_directory(f.model_dir)) throw Error("-m {}: not a model directory", f.model_dir);

    ThreadPool::set_global_threads(f.threads);
    const Model model = load_model(f.model_dir);
    const Tokenizer tokenizer = Tokenizer::from_model_dir(f.model_dir);
    const std::vector<int> prompt = tokenizer.encode(text, true);
    if (prompt.empty())
        throw Error("the prompt is empty and the tokenizer adds no BOS token: give some prompt text");
    // Tokens one run caches: the prompt and every generated token but the last.
    const int64_t need = static_cast<int64_t>(prompt.size()) + f.n_predict - 1;
    const int max_pos = model.config.max_position_embeddings;
    if (max_pos > 0 && need > max_pos) {
        throw Error("prompt ({} tokens) + -n {} exceed the model's context of {} tokens", prompt.size(),
                    f.n_predict, max_pos);
    }

    std::map<int, Prefilled> prefilled;  // by page size
    const auto prefilled_for = [&](int page_size) -> Prefilled& {
        auto it = prefilled.find(page_size);
        if (it != prefilled.end()) return it->second;
        if (!f.json)
            std::fprintf(stderr, "dsa: compare: prefill of %zu prompt tokens (pages of %d)\n", prompt.size(),
                         page_size);
        return prefilled
            .emplace(page_size, prefill_prompt(f, model, page_size, prompt, static_cast<int>(need)))
            .first->second;
    };
    if (!f.json) std::fprintf(stderr, "dsa: compare: reference (full attention), %d tokens\n", f.n_predict);
    std::vector<std::vector<double>> ref_logprobs;
    const std::vector<int> ref_tokens =
        run_reference(prefilled_for(ref_page_size), f.n_predict, ref_logprobs);

    std::vector<PolicyResult> results;
    for (const PolicyRun& run : runs) {
        Prefilled& pre = prefilled_for(run.policy.page_size);
        if (!f.json) std::fprintf(stderr, "dsa: compare: %s\n", describe_policy(run.policy).c_str());
        results.push_back(run_policy(pre, run, ref_tokens, ref_logprobs));
    }
    const int n_prompt = static_cast<int>(prompt.size());
    if (f.json) {
        print_json(results, n_prompt, f.n_predict, f.verbose);
    } else {
        print_table(results, n_prompt, f.n_predict, f.verbose);
    }
    return 0;
}

}  // namespace

void add_compare_command(CLI::App& root, Action& action) {
    auto f = std::make_shared<CompareFlags>();
    CLI::App* cmd =
        root.add_subcommand("compare", "Fidelity of sparse attention policies against full attention");
    cmd->add_option("-m,--model", f->model_dir,
                    "Model directory (config.json, *.safetensors, tokenizer.json)")
        ->required();
    f->prompt_opt = cmd->add_option("-p,--prompt", f->prompt, "Prompt text (exactly one of -p/-f)");
    f->file_opt =
        cmd->add_option("-f,--file", f->prompt_file, "Read the prompt from FILE (exactly one of -p/-f)");
    cmd->add_option("-n,--n-predict", f->n_predict, "Tokens to generate per run (>= 2)")
        ->capture_default_str();
    cmd->add_option("--attn", f->attn,
                    "Policies to compare, comma-separated presets or .json paths (e.g. quest,nsa)")
        ->required()
        ->delimiter(',');
    f->budget_opt =
        cmd->add_option("--budget", f->budgets,
                        "Token budgets, comma-separated; each policy runs at each (preset's when absent)")
            ->delimiter(',');
    add_attn_override_flags(cmd, f->overrides);
    cmd->add_option("-b,--batch-size", f->batch_size, "Prompt tokens per prefill chunk")
        ->capture_default_str();
    cmd->add_option("--device", f->device,
                    "cpu or auto, both the CPU reference backend (attention recall and sequence copies "
                    "are CPU-only); cuda is an error")
        ->capture_default_str();
    cmd->add_option("-t,--threads", f->threads, "CPU threads; 0: all cores")->capture_default_str();
    cmd->add_flag("--json", f->json, "Print one JSON object instead of the table");
    cmd->add_flag("-v,--verbose", f->verbose, "Also report attention recall and tokens attended per layer");
    cmd->callback([f, &action] { action = [f] { return run_compare(*f); }; });
}

}  // namespace dsa::cli
