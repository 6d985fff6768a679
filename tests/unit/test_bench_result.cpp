// Bench row statistics (llama-bench's: t/s per repetition, mean and sample stddev), names and GB/s, and
// the printed formats: md columns, csv/json/jsonl fields.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "bench/bench_output.h"
#include "bench/bench_result.h"

namespace dsa {
namespace {

BenchResult gen_row() {
    BenchResult r;
    r.id.model = "m";
    r.id.params = 1234;
    r.id.backend = "cpu";
    r.id.bw_gbs = 100;
    r.attn = "quest";
    r.policy = "quest P=16 B=64";
    r.budget = 64;
    r.test = BenchTest::Gen;
    r.n_gen = 100;
    r.n_depth = 4096;
    r.samples_ms = {10, 20};  // 10000 and 5000 t/s
    r.bytes = TrafficBytes{1e6, 2e6, 0.5e6};
    r.attended_tokens = 70;
    return r;
}

// Runs the writer into a temporary FILE and returns what it printed.
std::string write_rows(BenchFormat f, bool kernels, const std::vector<BenchResult>& rows) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> tmp(std::tmpfile(), &std::fclose);
    BenchWriter w(f, tmp.get(), kernels);
    for (const BenchResult& r : rows) w.row(r);
    w.finish();
    std::rewind(tmp.get());
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, tmp.get())) > 0) out.append(buf, n);
    return out;
}

TEST(BenchResult, StatisticsOverRepetitions) {
    const BenchResult r = gen_row();
    EXPECT_EQ(r.test_name(), "tg100 @ d4096");
    EXPECT_DOUBLE_EQ(r.mean_ms(), 15);
    EXPECT_DOUBLE_EQ(r.avg_ts(), 7500);
    EXPECT_NEAR(r.stddev_ts(), std::sqrt(2 * 2500.0 * 2500.0), 1e-9);
    EXPECT_NEAR(r.stddev_ms(), std::sqrt(2 * 25.0), 1e-12);
    EXPECT_DOUBLE_EQ(r.ms_per_token(), 0.15);
    EXPECT_DOUBLE_EQ(r.gbps(), 3.5e6 / 0.15e-3 / 1e9);
    ASSERT_TRUE(r.bw_pct().has_value());
    EXPECT_DOUBLE_EQ(*r.bw_pct(), r.gbps());  // of 100 GB/s
}

TEST(BenchResult, NamesAndMissingBandwidth) {
    BenchResult r = gen_row();
    r.test = BenchTest::Prompt;
    r.n_prompt = 512;
    r.n_depth = 0;
    EXPECT_EQ(r.test_name(), "pp512");
    r.test = BenchTest::Attention;
    r.n_depth = 32768;
    EXPECT_EQ(r.test_name(), "attn @ d32768");
    EXPECT_EQ(r.tokens_per_rep(), 1);
    r.id.bw_gbs = 0;
    EXPECT_FALSE(r.bw_pct().has_value());
    r.samples_ms = {4};
    EXPECT_DOUBLE_EQ(r.stddev_ms(), 0);
}

TEST(BenchResult, RecordFields) {
    const nlohmann::ordered_json j = bench_record(gen_row());
    EXPECT_EQ(j["test"], "tg100 @ d4096");
    EXPECT_EQ(j["kind"], "tg");
    EXPECT_EQ(j["budget"], 64);
    EXPECT_EQ(j["reps"], 2);
    EXPECT_DOUBLE_EQ(j["avg_ns"].get<double>(), 15e6);
    EXPECT_DOUBLE_EQ(j["bytes_per_token"].get<double>(), 3.5e6);
    EXPECT_EQ(j["samples_ns"].size(), 2u);
    EXPECT_DOUBLE_EQ(j["samples_ts"][1].get<double>(), 5000);
    BenchResult full = gen_row();
    full.budget.reset();
    full.id.bw_gbs = 0;
    const nlohmann::ordered_json f = bench_record(full);
    EXPECT_TRUE(f["budget"].is_null());
    EXPECT_TRUE(f["bw_gbps"].is_null());
    EXPECT_TRUE(f["bw_pct"].is_null());
}

TEST(BenchOutput, MarkdownTable) {
    const std::string md = write_rows(BenchFormat::Md, false, {gen_row(), gen_row()});
    std::istringstream in(md);
    std::string header, rule, row;
    std::getline(in, header);
    std::getline(in, rule);
    std::getline(in, row);
    EXPECT_EQ(header,
              "| model | params | backend | attn | budget | batch | test | t/s | ms/tok | GB/s | % BW |");
    EXPECT_EQ(rule, "| --- | ---: | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    EXPECT_EQ(
        row,
        "| m | 1.23 K | cpu | quest | 64 | 1 | tg100 @ d4096 | 7500.00 ± 3535.53 | 0.150 | 23.3 | 23.3 |");
}

TEST(BenchOutput, KernelMarkdownTable) {
    BenchResult r = gen_row();
    r.test = BenchTest::Attention;
    r.samples_ms = {2, 2};
    r.speedup = 2.5;
    const std::string md = write_rows(BenchFormat::Md, true, {r});
    EXPECT_EQ(md.substr(0, md.find('\n')),
              "| model | params | backend | attn | budget | test | ms | MB | GB/s | % BW | speedup |");
    EXPECT_NE(md.find("| attn @ d4096 | 2.000 ± 0.000 | 3.50 | 1.8 | 1.8 | 2.50x |"), std::string::npos)
        << md;
}

TEST(BenchOutput, CsvJsonAndJsonlCarryTheSameFields) {
    const std::vector<BenchResult> rows = {gen_row(), gen_row()};
    const nlohmann::json array = nlohmann::json::parse(write_rows(BenchFormat::Json, false, rows));
    ASSERT_EQ(array.size(), 2u);
    std::istringstream jsonl(write_rows(BenchFormat::Jsonl, false, rows));
    std::string line;
    int n = 0;
    while (std::getline(jsonl, line)) EXPECT_EQ(nlohmann::json::parse(line), array[n++]);
    EXPECT_EQ(n, 2);

    std::istringstream csv(write_rows(BenchFormat::Csv, false, rows));
    std::string header, first;
    std::getline(csv, header);
    std::getline(csv, first);
    std::string expected_header;
    for (const auto& [key, value] : array[0].items()) {
        if (!expected_header.empty()) expected_header += ',';
        expected_header += key;
    }
    // nlohmann::json (unordered) iterates keys sorted; compare as sets of names.
    auto names = [](const std::string& h) {
        std::vector<std::string> v;
        std::istringstream s(h);
        std::string x;
        while (std::getline(s, x, ',')) v.push_back(x);
        std::sort(v.begin(), v.end());
        return v;
    };
    EXPECT_EQ(names(header), names(expected_header));
    EXPECT_EQ(first.substr(0, 4), "\"m\",");
    EXPECT_NE(first.find("\"10000000.0 20000000.0\""), std::string::npos) << first;  // samples_ns
    EXPECT_EQ(write_rows(BenchFormat::Json, false, {}), "[]\n");
}

}  // namespace
}  // namespace dsa
