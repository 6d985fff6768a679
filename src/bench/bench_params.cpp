#include "bench/bench_params.h"

#include <algorithm>

#include "eval/flag_lists.h"
#include "util/error.h"

namespace dsa {

namespace {

// "none" runs no test of that kind; otherwise lengths >= 1 (a pp0 or tg0 test measures nothing).
std::vector<int> parse_test_lengths(const std::string& list, const char* flag, const char* kind) {
    if (list == "none") return {};
    try {
        return parse_int_list(list, flag, 1);
    } catch (const Error& e) {
        throw Error("{} (give {} none to run no {} test)", e.what(), flag, kind);
    }
}

int max_or_zero(const std::vector<int>& v) {
    return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

}  // namespace

BenchFormat parse_bench_format(const std::string& s) {
    if (s == "md") return BenchFormat::Md;
    if (s == "csv") return BenchFormat::Csv;
    if (s == "json") return BenchFormat::Json;
    if (s == "jsonl") return BenchFormat::Jsonl;
    throw Error("-o/--output must be md, csv, json or jsonl, got '{}'", s);
}

int BenchParams::context_needed() const {
    const int longest = std::max(max_or_zero(n_prompt), max_or_zero(n_gen));
    return max_or_zero(depths) + longest + (kernels ? 1 : 0);
}

int BenchParams::max_batch() const {
    int b = 1;
    for (const int x : batches) b = std::max(b, x);
    return b;
}

BenchParams parse_bench_flags(const BenchFlags& f) {
    BenchParams p;
    if (f.model_dir.empty() == f.random_weights.empty()) {
        throw Error("give exactly one of -m/--model DIR or --random-weights SHAPE.json");
    }
    p.model_dir = f.model_dir;
    p.random_weights = f.random_weights;
    p.format = parse_bench_format(f.output);
    if (f.reps < 1) throw Error("-r/--repetitions must be >= 1, got {}", f.reps);
    p.reps = f.reps;
    if (f.device != "cpu" && f.device != "cuda" && f.device != "auto") {
        throw Error("--device must be cpu, cuda or auto, got '{}'", f.device);
    }
    p.device = f.device;
    if (f.threads < 0) throw Error("-t/--threads must be >= 0 (0: all cores), got {}", f.threads);
    p.threads = f.threads;
    if (f.batch_size < 0)
        throw Error("-b/--batch-size must be >= 0 (0: the backend's prefill chunk), got {}", f.batch_size);
    p.batch_size = f.batch_size;
    if (f.seed < 0) throw Error("-s/--seed must be >= 0, got {}", f.seed);
    p.seed = static_cast<uint64_t>(f.seed);

    p.depths = parse_int_list(f.depth, "-d/--depth", 0);
    p.attn = split_list(f.attn, "--attn");
    if (!f.budget.empty()) p.budgets = parse_int_list(f.budget, "--budget", 1);
    p.batches = parse_int_list(f.batch, "--batch", 1);
    for (const int b : p.batches) {
        if (b > kMaxBenchBatch) throw Error("--batch {}: at most {} sequences per step", b, kMaxBenchBatch);
    }

    p.kernels = f.kernels;
    if (p.kernels) {
        if (p.max_batch() != 1)
            throw Error("--batch does not apply to --kernels, which times one sequence's attention step");
        if (f.n_prompt_given || f.n_gen_given) {
            throw Error("-p/-n do not apply to --kernels, which times the attention step at each --depth");
        }
        return p;
    }
    p.n_prompt = parse_test_lengths(f.n_prompt, "-p/--n-prompt", "pp");
    p.n_gen = parse_test_lengths(f.n_gen, "-n/--n-gen", "tg");
    if (p.n_prompt.empty() && p.n_gen.empty()) throw Error("-p none and -n none: no test left to run");
    return p;
}

}  // namespace dsa
