#pragma once
// What `dsa bench` runs, parsed and checked from the command line before anything is loaded, so a bad
// value costs nothing and gives one `dsa: error:` line naming the flag.
#include <cstdint>
#include <string>
#include <vector>

namespace dsa {

enum class BenchFormat { Md, Csv, Json, Jsonl };

constexpr int kMaxBenchBatch = 256;  // sequences per step (the CUDA backend's limit)

// The flags as given (lists are comma-separated strings, parsed by parse_bench_flags).
struct BenchFlags {
    std::string model_dir;       // -m
    std::string random_weights;  // --random-weights SHAPE.json
    std::string n_prompt = "512";
    std::string n_gen = "128";
    std::string depth = "0";
    std::string attn = "full";
    std::string budget;  // empty: each preset's own budget
    std::string batch = "1";
    int reps = 5;
    std::string device = "auto";
    int threads = 0;
    int batch_size = 0;  // prefill chunk; 0: the backend's
    std::string output = "md";
    bool kernels = false;
    int64_t seed = 0;
    bool n_prompt_given = false;  // -p / -n on the command line (they do not apply to --kernels)
    bool n_gen_given = false;
};

struct BenchParams {
    std::string model_dir;  // exactly one of model_dir and random_weights is set
    std::string random_weights;
    std::vector<int> n_prompt;  // pp<N> tests; empty: none ("-p none")
    std::vector<int> n_gen;     // tg<N> tests; empty: none ("-n none")
    std::vector<int> depths;    // tokens already in the cache for each test
    std::vector<std::string> attn;
    std::vector<int> budgets;  // empty: the presets' budgets
    std::vector<int> batches;  // sequences per step
    int reps = 5;
    std::string device = "auto";
    int threads = 0;
    int batch_size = 0;  // prefill chunk; 0: the backend's (Backend::prefill_chunk)
    BenchFormat format = BenchFormat::Md;
    bool kernels = false;
    uint64_t seed = 0;  // random weights and the random token ids that fill the cache

    // Cache capacity the tests need: the largest depth plus the longest test (+1: --kernels decodes one
    // token on top of each depth).
    int context_needed() const;
    int max_batch() const;  // the largest of batches
};

// Throws dsa::Error naming the flag and what was expected.
BenchParams parse_bench_flags(const BenchFlags& f);

BenchFormat parse_bench_format(const std::string& s);  // md, csv, json, jsonl

}  // namespace dsa
