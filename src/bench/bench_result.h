#pragma once
// One row of `dsa bench`: what was run, the time of every repetition, and the bytes model's count, with
// the statistics every output format prints (field names: docs/bench.md).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/bytes_model.h"

namespace dsa {

enum class BenchTest { Prompt, Gen, Attention };  // pp<N>, tg<N>, --kernels attention step

// What every row of one run shares.
struct BenchIdentity {
    std::string model;  // model directory name, or "SHAPE (random)" for --random-weights
    std::string arch;   // config.json architecture, e.g. "LlamaForCausalLM"
    int64_t params = 0;
    double model_bytes = 0;  // weights in their stored dtype
    std::string backend;     // "cpu", "cuda"
    int threads = 0;
    double bw_gbs = 0;  // copy bandwidth measured at start-up; 0: not measured
};

struct BenchResult {
    BenchIdentity id;
    std::string attn;           // the --attn item
    std::string policy;         // describe_policy()
    std::optional<int> budget;  // AttentionPolicy::budget_tokens(); none for full
    int batch = 1;              // sequences per step: pp and tg rows count the tokens of all of them
    BenchTest test = BenchTest::Gen;
    int n_prompt = 0;                       // pp: tokens prefilled per repetition
    int n_gen = 0;                          // tg: tokens decoded per repetition
    int n_depth = 0;                        // tokens in the cache before each repetition
    std::vector<double> samples_ms;         // [reps] one whole repetition (attention: one step)
    TrafficBytes bytes;                     // per token (pp, tg) or per step (attention)
    std::optional<double> attended_tokens;  // mean per (layer, KV head) per decode step
    std::optional<double> speedup;          // attention: full's mean ms / this mean ms at the same depth

    std::string test_name() const;  // "pp512", "tg128 @ d4096", "attn @ d32768"
    int tokens_per_rep() const;     // batch x n_prompt, batch x n_gen, or 1 (attention)
    double mean_ms() const;
    double stddev_ms() const;  // sample standard deviation (n - 1); 0 for one repetition
    double avg_ts() const;     // mean over repetitions of tokens / second
    double stddev_ts() const;
    double ms_per_token() const;           // mean_ms / tokens_per_rep
    double gbps() const;                   // bytes.total() per token (step) / ms_per_token
    std::optional<double> bw_pct() const;  // gbps / id.bw_gbs * 100
};

// The row as one JSON object, fields in the documented order (csv, json and jsonl print these).
nlohmann::ordered_json bench_record(const BenchResult& r);

}  // namespace dsa
