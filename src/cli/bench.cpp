// `dsa bench`: llama-bench-style throughput (pp<N>, tg<N> at cache depths) per attention policy, with
// achieved GB/s against the bandwidth measured at start-up; --kernels times the attention step alone.
// Results go to stdout (md, csv, json, jsonl); progress goes to stderr. Fields: docs/bench.md.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_output.h"
#include "bench/bench_params.h"
#include "bench/bench_session.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "eval/data_paths.h"
#include "eval/policy_runs.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "util/error.h"
#include "util/thread_pool.h"
#include "util/timer.h"

namespace dsa::cli {

namespace {

namespace fs = std::filesystem;

struct BenchCliFlags {
    BenchFlags flags;
    CLI::Option* n_prompt_opt = nullptr;
    CLI::Option* n_gen_opt = nullptr;
};

void check_device_available(const std::string& device) {
    if (device != "cuda") return;
    if (!cuda_compiled()) {
        throw Error("--device cuda: this dsa was built without CUDA support (rebuild with -DDSA_CUDA=ON)");
    }
    if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device found");
}

// Every --attn item loaded and every budget applied before the model is read; --kernels puts full first
// (the base of its speedup column) and runs it once.
std::vector<PolicyRun> bench_policy_runs(const BenchParams& p) {
    std::vector<PolicyRun> runs = expand_policy_runs(p.attn, p.budgets, preset_search_dirs());
    if (p.kernels) {
        std::vector<PolicyRun> ordered;
        for (const PolicyRun& run : runs)
            if (run.policy.kind == PolicyKind::Full && ordered.empty()) ordered.push_back(run);
        if (ordered.empty()) ordered = expand_policy_runs({"full"}, {}, preset_search_dirs());
        for (const PolicyRun& run : runs)
            if (run.policy.kind != PolicyKind::Full) ordered.push_back(run);
        runs = ordered;
    }
    return runs;
}

Model load_bench_model(const BenchParams& p, std::string& name) {
    if (!p.random_weights.empty()) {
        name = fs::path(p.random_weights).stem().string() + " (random)";
        return make_random_model(p.random_weights, p.seed);
    }
    if (!fs::exists(p.model_dir)) throw Error("model directory {} does not exist (-m)", p.model_dir);
    if (!fs::is_directory(p.model_dir)) throw Error("-m {} is not a directory", p.model_dir);
    name = fs::weakly_canonical(p.model_dir).filename().string();
    return load_model(p.model_dir);
}

int run_bench(const BenchCliFlags& cli) {
    BenchFlags f = cli.flags;
    f.n_prompt_given = cli.n_prompt_opt->count() > 0;
    f.n_gen_given = cli.n_gen_opt->count() > 0;
    const BenchParams p = parse_bench_flags(f);
    check_device_available(p.device);
    const std::vector<PolicyRun> runs = bench_policy_runs(p);

    // The pool is sized once, on first use, so the thread count must be set before any backend exists.
    ThreadPool::set_global_threads(p.threads);
    const double t0 = now_ms();
    std::string name;
    const Model model = load_bench_model(p, name);
    std::fprintf(stderr, "dsa bench: %s (%s, %.2f GB of weights) ready in %.1f s\n", name.c_str(),
                 model.config.arch_name.c_str(), static_cast<double>(model.weight_bytes()) / 1e9,
                 (now_ms() - t0) / 1e3);
    const int trained = model.config.max_position_embeddings;
    if (trained > 0 && p.context_needed() > trained) {
        std::fprintf(stderr,
                     "dsa bench: warning: the tests need %d tokens of context, more than the model's "
                     "max_position_embeddings %d\n",
                     p.context_needed(), trained);
    }

    BenchSession session(model, name, p);
    BenchWriter writer(p.format, stdout, p.kernels);
    const RowSink sink = [&writer](const BenchResult& r) { writer.row(r); };
    if (p.kernels) {
        run_kernel_bench(session, runs, sink);
    } else {
        run_throughput_bench(session, runs, sink);
    }
    writer.finish();
    return 0;
}

constexpr const char* kFooter = R"(
Tests (like llama-bench): pp<N> prefills N tokens on top of the depth, tg<N> decodes N tokens one at a
time; "@ d<D>": D random tokens are already in the cache (filled untimed, reported on stderr). Every
repetition starts from the same depth, after one warm-up. t/s: mean +- stddev over repetitions.
GB/s: the bytes model (weights + K/V and page metadata read, per token) / time per token; % BW: of the
copy bandwidth measured at start-up. --kernels: the attention step alone (selection + decode attention,
every layer) per policy and depth, with its speedup over full (needs --device cuda).
Fields of csv/json/jsonl and the bytes model: docs/bench.md.)";

}  // namespace

void add_bench_command(CLI::App& root, Action& action) {
    auto cli = std::make_shared<BenchCliFlags>();
    BenchFlags& f = cli->flags;
    CLI::App* cmd =
        root.add_subcommand("bench", "Long-context throughput per attention policy (like llama-bench)");
    cmd->footer(kFooter);
    cmd->add_option("-m,--model", f.model_dir, "Model directory (config.json, *.safetensors)");
    cmd->add_option(
        "--random-weights", f.random_weights,
        "A config.json of a real architecture (e.g. models/shapes/llama-3.1-8b.json): bf16 random "
        "weights, no checkpoint needed");
    cli->n_prompt_opt = cmd->add_option("-p,--n-prompt", f.n_prompt,
                                        "Prompt lengths of pp tests, comma-separated; none: no pp test")
                            ->capture_default_str();
    cli->n_gen_opt = cmd->add_option("-n,--n-gen", f.n_gen,
                                     "Generated lengths of tg tests, comma-separated; none: no tg test")
                         ->capture_default_str();
    cmd->add_option("-d,--depth", f.depth, "Tokens already in the cache before each test, comma-separated")
        ->capture_default_str();
    cmd->add_option("--attn", f.attn,
                    "Attention policies, comma-separated: preset names (configs/NAME.json) or .json paths")
        ->capture_default_str();
    cmd->add_option(
        "--budget", f.budget,
        "Token budgets, comma-separated; every non-full policy runs once per budget (default: the "
        "preset's)");
    cmd->add_option("--batch", f.batch,
                    "Sequences per step, comma-separated (at most 256): tg decodes them together, pp "
                    "prefills them one after another; t/s counts the tokens of all of them")
        ->capture_default_str();
    cmd->add_option("-r,--repetitions", f.reps, "Timed repetitions of each test, after one warm-up")
        ->capture_default_str();
    cmd->add_option("--device", f.device, "cpu, cuda or auto (cuda when a device exists)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", f.threads, "CPU threads; 0: all cores")->capture_default_str();
    cmd->add_option("-b,--batch-size", f.batch_size,
                    "Prompt tokens per prefill chunk (fills and pp tests); 0: the backend's (512 on the CPU, "
                    "8192 on CUDA)")
        ->capture_default_str();
    cmd->add_option("-o,--output", f.output, "md, csv, json or jsonl")->capture_default_str();
    cmd->add_flag("--kernels", f.kernels,
                  "Time the attention step alone (selection + attention, every layer) per policy and depth");
    cmd->add_option("-s,--seed", f.seed,
                    "Seed of the random weights and of the token ids that fill the cache")
        ->capture_default_str();
    cmd->callback([cli, &action] { action = [cli] { return run_bench(*cli); }; });
}

}  // namespace dsa::cli
