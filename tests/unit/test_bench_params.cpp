// dsa bench's flag parsing: the lists it accepts, the context they need, and one clear error per bad value.
#include <gtest/gtest.h>

#include <string>

#include "bench/bench_params.h"
#include "util/error.h"

namespace dsa {
namespace {

BenchFlags random_flags() {
    BenchFlags f;
    f.random_weights = "shape.json";
    return f;
}

void expect_error(const BenchFlags& f, const std::string& needle) {
    try {
        parse_bench_flags(f);
        FAIL() << "expected an error containing: " << needle;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
    }
}

TEST(BenchParams, DefaultsAreLlamaBenchs) {
    const BenchParams p = parse_bench_flags(random_flags());
    EXPECT_EQ(p.n_prompt, std::vector<int>{512});
    EXPECT_EQ(p.n_gen, std::vector<int>{128});
    EXPECT_EQ(p.depths, std::vector<int>{0});
    EXPECT_EQ(p.attn, std::vector<std::string>{"full"});
    EXPECT_TRUE(p.budgets.empty());
    EXPECT_EQ(p.batches, std::vector<int>{1});
    EXPECT_EQ(p.reps, 5);
    EXPECT_EQ(p.format, BenchFormat::Md);
    EXPECT_EQ(p.context_needed(), 512);
    EXPECT_EQ(p.max_batch(), 1);
}

TEST(BenchParams, BatchListGivesTheLargestBatch) {
    BenchFlags f = random_flags();
    f.batch = "1,8,4";
    const BenchParams p = parse_bench_flags(f);
    EXPECT_EQ(p.batches, (std::vector<int>{1, 8, 4}));
    EXPECT_EQ(p.max_batch(), 8);
}

TEST(BenchParams, ListsAndContext) {
    BenchFlags f = random_flags();
    f.n_prompt = "16, 64";
    f.n_gen = "8";
    f.depth = "0,4096,100";
    f.attn = "full,quest";
    f.budget = "256,512";
    f.output = "jsonl";
    const BenchParams p = parse_bench_flags(f);
    EXPECT_EQ(p.n_prompt, (std::vector<int>{16, 64}));
    EXPECT_EQ(p.depths, (std::vector<int>{0, 4096, 100}));
    EXPECT_EQ(p.attn, (std::vector<std::string>{"full", "quest"}));
    EXPECT_EQ(p.budgets, (std::vector<int>{256, 512}));
    EXPECT_EQ(p.format, BenchFormat::Jsonl);
    EXPECT_EQ(p.context_needed(), 4096 + 64);
}

TEST(BenchParams, NoneSkipsATestKind) {
    BenchFlags f = random_flags();
    f.n_prompt = "none";
    f.depth = "1000";
    const BenchParams p = parse_bench_flags(f);
    EXPECT_TRUE(p.n_prompt.empty());
    EXPECT_EQ(p.context_needed(), 1000 + 128);
    f.n_gen = "none";
    expect_error(f, "no test left to run");
}

TEST(BenchParams, KernelsTimeOneStepOnTopOfEachDepth) {
    BenchFlags f = random_flags();
    f.kernels = true;
    f.depth = "32768";
    const BenchParams p = parse_bench_flags(f);
    EXPECT_TRUE(p.n_prompt.empty());
    EXPECT_TRUE(p.n_gen.empty());
    EXPECT_EQ(p.context_needed(), 32769);
    f.n_gen_given = true;
    expect_error(f, "do not apply to --kernels");
}

TEST(BenchParams, BadValuesAreClearErrors) {
    auto with = [](auto set) {
        BenchFlags f = random_flags();
        set(f);
        return f;
    };
    expect_error(with([](BenchFlags& f) { f.n_prompt = "0"; }),
                 "-p/--n-prompt '0': 0 is below the minimum 1");
    expect_error(with([](BenchFlags& f) { f.n_gen = "8,-1"; }), "-n/--n-gen");
    expect_error(with([](BenchFlags& f) { f.depth = "-1"; }), "-d/--depth '-1': -1 is below the minimum 0");
    expect_error(with([](BenchFlags& f) { f.depth = "1,,2"; }), "-d/--depth");
    expect_error(with([](BenchFlags& f) { f.output = "xml"; }), "-o/--output must be md, csv, json or jsonl");
    expect_error(with([](BenchFlags& f) { f.reps = 0; }), "-r/--repetitions must be >= 1");
    expect_error(with([](BenchFlags& f) { f.budget = "abc"; }), "--budget 'abc': 'abc' is not an integer");
    expect_error(with([](BenchFlags& f) { f.batch = "1,0"; }), "--batch");
    expect_error(with([](BenchFlags& f) { f.batch = "1,257"; }), "--batch 257: at most 256");
    expect_error(with([](BenchFlags& f) {
                     f.kernels = true;
                     f.batch = "2";
                 }),
                 "--batch does not apply to --kernels");
    expect_error(with([](BenchFlags& f) { f.device = "tpu"; }), "--device must be cpu, cuda or auto");
    expect_error(with([](BenchFlags& f) { f.batch_size = -1; }), "-b/--batch-size");
    expect_error(with([](BenchFlags& f) { f.threads = -2; }), "-t/--threads");
    expect_error(with([](BenchFlags& f) { f.seed = -1; }), "-s/--seed");
    expect_error(with([](BenchFlags& f) { f.model_dir = "dir"; }), "exactly one of -m/--model");
    expect_error(with([](BenchFlags& f) { f.random_weights.clear(); }), "exactly one of -m/--model");
}

}  // namespace
}  // namespace dsa
