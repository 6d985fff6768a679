// `dsa bench` end to end on the CPU with a tiny random-weight shape (and the llama test model via -m):
// every output format parsed and its fields checked against the flags, and one `dsa: error:` line for
// each kind of bad flag.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "expect_cli_error.h"

namespace dsa::test {
namespace {

using dsa::test::expect_cli_error;

const std::string kShape = std::string(DSA_TEST_DATA) + "/shapes/tiny-llama.json";
const std::string kLlama = std::string(DSA_TEST_DATA) + "/models/llama";

// 2 policies x 2 depths x (pp16, tg8); quest B=32 on the 4-layer shape (2 dense layers).
std::string bench_args(const std::string& format) {
    return "bench --random-weights '" + kShape +
           "' -p 16 -n 8 -d 0,64 -r 2 --device cpu -t 1 --attn full,quest --budget 32 -o " + format;
}

// The rows every format must describe, in order.
void check_rows(const nlohmann::json& rows) {
    ASSERT_EQ(rows.size(), 8u);
    const std::vector<std::string> tests = {"pp16", "tg8", "pp16 @ d64", "tg8 @ d64"};
    for (size_t i = 0; i < rows.size(); ++i) {
        const nlohmann::json& r = rows[i];
        const bool quest = i >= 4;
        const bool gen = i % 2 == 1;
        const int depth = (i % 4) >= 2 ? 64 : 0;
        EXPECT_EQ(r["model"], "tiny-llama (random)");
        EXPECT_EQ(r["arch"], "LlamaForCausalLM");
        EXPECT_GT(r["params"].get<double>(), 0);
        EXPECT_EQ(r["backend"], "cpu");
        EXPECT_EQ(r["threads"], 1);
        EXPECT_EQ(r["attn"], quest ? "quest" : "full");
        if (quest) {
            EXPECT_EQ(r["budget"], 32);
        } else {
            EXPECT_TRUE(r["budget"].is_null());
        }
        EXPECT_EQ(r["batch"], 1);
        EXPECT_EQ(r["test"], tests[i % 4]);
        EXPECT_EQ(r["kind"], gen ? "tg" : "pp");
        EXPECT_EQ(r["n_prompt"], gen ? 0 : 16);
        EXPECT_EQ(r["n_gen"], gen ? 8 : 0);
        EXPECT_EQ(r["n_depth"], depth);
        EXPECT_EQ(r["reps"], 2);
        ASSERT_EQ(r["samples_ns"].size(), 2u);
        ASSERT_EQ(r["samples_ts"].size(), 2u);
        const int tokens = gen ? 8 : 16;
        double ts_sum = 0;
        for (int k = 0; k < 2; ++k) {
            const double ns = r["samples_ns"][k].get<double>();
            EXPECT_GT(ns, 0);
            EXPECT_NEAR(r["samples_ts"][k].get<double>(), tokens * 1e9 / ns, 1e-6 * tokens * 1e9 / ns);
            ts_sum += r["samples_ts"][k].get<double>();
        }
        EXPECT_NEAR(r["avg_ts"].get<double>(), ts_sum / 2, 1e-6 * ts_sum);
        EXPECT_NEAR(r["ms_per_token"].get<double>(), r["avg_ns"].get<double>() / 1e6 / tokens, 1e-9);
        const double bytes = r["bytes_per_token"].get<double>();
        EXPECT_NEAR(
            bytes,
            r["weight_bytes"].get<double>() + r["kv_bytes"].get<double>() + r["meta_bytes"].get<double>(),
            1e-6 * bytes);
        EXPECT_NEAR(r["gbps"].get<double>(), bytes / (r["ms_per_token"].get<double>() * 1e6),
                    1e-6 * r["gbps"].get<double>());
        ASSERT_FALSE(r["bw_gbps"].is_null()) << "the cpu backend measures host bandwidth";
        EXPECT_NEAR(r["bw_pct"].get<double>(), 100 * r["gbps"].get<double>() / r["bw_gbps"].get<double>(),
                    1e-6);
        if (gen) {
            // tg8 @ dD: steps with D+1 .. D+8 tokens; full attends all of them, quest at most 32 in sparse
            // layers.
            const double full_mean = depth + 4.5;
            if (quest && depth > 0) {
                EXPECT_LT(r["attended_tokens"].get<double>(), full_mean);
                EXPECT_GT(r["meta_bytes"].get<double>(), 0);
            } else {
                EXPECT_DOUBLE_EQ(r["attended_tokens"].get<double>(), full_mean);
                EXPECT_EQ(r["meta_bytes"].get<double>(), 0);
            }
        } else {
            EXPECT_TRUE(r["attended_tokens"].is_null());
        }
    }
    // Same model, so the same weights are read per decode step whatever the policy.
    EXPECT_EQ(rows[1]["weight_bytes"], rows[5]["weight_bytes"]);
    EXPECT_LT(rows[7]["kv_bytes"].get<double>(), rows[3]["kv_bytes"].get<double>());
}

std::vector<std::string> split_csv_line(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
            cell += '"';
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == ',' && !quoted) {
            cells.push_back(cell);
            cell.clear();
        } else {
            cell += c;
        }
    }
    cells.push_back(cell);
    return cells;
}

TEST(BenchCli, JsonRowsHaveEveryDocumentedField) {
    const CliResult r = run_dsa(bench_args("json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    check_rows(rows);
    EXPECT_NE(r.err.find("memory bandwidth"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("cache filled to 64 tokens"), std::string::npos) << r.err;
}

// --batch 3: tg decodes three sequences per step (weights read once per step, so fewer weight bytes per
// token), pp prefills three prompts; t/s counts the tokens of all three.
TEST(BenchCli, BatchRowsCountEverySequencesTokens) {
    const CliResult r = run_dsa("bench --random-weights '" + kShape +
                                "' -p 16 -n 8 -d 32 -r 2 --device cpu -t 1 --batch 1,3 -o json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 4u);
    for (size_t i = 0; i < rows.size(); ++i) {
        const nlohmann::json& row = rows[i];
        const int batch = i < 2 ? 1 : 3;
        const bool gen = i % 2 == 1;
        EXPECT_EQ(row["batch"], batch);
        EXPECT_EQ(row["test"], gen ? "tg8 @ d32" : "pp16 @ d32");
        const int tokens = batch * (gen ? 8 : 16);
        for (int k = 0; k < 2; ++k) {
            const double ns = row["samples_ns"][k].get<double>();
            EXPECT_NEAR(row["samples_ts"][k].get<double>(), tokens * 1e9 / ns, 1e-6 * tokens * 1e9 / ns);
        }
        EXPECT_NEAR(row["ms_per_token"].get<double>(), row["avg_ns"].get<double>() / 1e6 / tokens, 1e-9);
    }
    // Per generated token: a third of the weight bytes (plus the embedding rows), the same K/V bytes.
    const double w1 = rows[1]["weight_bytes"].get<double>(), w3 = rows[3]["weight_bytes"].get<double>();
    EXPECT_LT(w3, w1 / 2.5);
    EXPECT_DOUBLE_EQ(rows[1]["kv_bytes"].get<double>(), rows[3]["kv_bytes"].get<double>());
    EXPECT_DOUBLE_EQ(rows[1]["attended_tokens"].get<double>(), rows[3]["attended_tokens"].get<double>());
    // pp rows: the same bytes per token whatever the batch (each prompt is its own prefill).
    EXPECT_DOUBLE_EQ(rows[0]["bytes_per_token"].get<double>(), rows[2]["bytes_per_token"].get<double>());
}

TEST(BenchCli, JsonlIsOneObjectPerLine) {
    const CliResult r = run_dsa(bench_args("jsonl"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json rows = nlohmann::json::array();
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
    check_rows(rows);
}

TEST(BenchCli, CsvHasAHeaderAndTheSameFields) {
    const CliResult r = run_dsa(bench_args("csv"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::string line;
    std::getline(in, line);
    const std::vector<std::string> header = split_csv_line(line);
    nlohmann::json rows = nlohmann::json::array();
    while (std::getline(in, line)) {
        const std::vector<std::string> cells = split_csv_line(line);
        ASSERT_EQ(cells.size(), header.size()) << line;
        nlohmann::json row;
        for (size_t i = 0; i < cells.size(); ++i) {
            const std::string& k = header[i];
            const std::string& v = cells[i];
            if (k == "samples_ns" || k == "samples_ts") {
                row[k] = nlohmann::json::array();
                std::istringstream s(v);
                double x;
                while (s >> x) row[k].push_back(x);
            } else if (v.empty()) {
                row[k] = nullptr;
            } else if (k == "model" || k == "arch" || k == "backend" || k == "attn" || k == "policy" ||
                       k == "kind" || k == "test") {
                row[k] = v;
            } else {
                row[k] = nlohmann::json::parse(v);
            }
        }
        rows.push_back(row);
    }
    check_rows(rows);
}

TEST(BenchCli, MarkdownTableLikeLlamaBench) {
    const CliResult r = run_dsa(bench_args("md"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    ASSERT_EQ(lines.size(), 10u) << r.out;
    EXPECT_EQ(lines[0],
              "| model | params | backend | attn | budget | batch | test | t/s | ms/tok | GB/s | % BW |");
    for (size_t i = 2; i < lines.size(); ++i) {
        EXPECT_EQ(std::count(lines[i].begin(), lines[i].end(), '|'), 12) << lines[i];
        EXPECT_EQ(lines[i].rfind("| tiny-llama (random) | ", 0), 0u) << lines[i];
        EXPECT_NE(lines[i].find(" ± "), std::string::npos) << lines[i];
    }
    EXPECT_NE(lines[5].find("| full | - | 1 | tg8 @ d64 |"), std::string::npos) << lines[5];
    EXPECT_NE(lines[9].find("| quest | 32 | 1 | tg8 @ d64 |"), std::string::npos) << lines[9];
}

TEST(BenchCli, ModelDirectory) {
    const CliResult r = run_dsa("bench -m '" + kLlama + "' -p none -n 4 -d 16 -r 1 --device cpu -o jsonl");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json row = nlohmann::json::parse(r.out);
    EXPECT_EQ(row["model"], "llama");
    EXPECT_EQ(row["test"], "tg4 @ d16");
    EXPECT_EQ(row["samples_ns"].size(), 1u);
}

TEST(BenchCli, BadFlagsAreOneLineErrors) {
    const std::string base = "bench --random-weights '" + kShape + "' --device cpu ";
    expect_cli_error(run_dsa(base + "-p 0"), "-p/--n-prompt '0': 0 is below the minimum 1");
    expect_cli_error(run_dsa(base + "--depth -1"), "-d/--depth '-1': -1 is below the minimum 0");
    expect_cli_error(run_dsa(base + "-o xml"), "-o/--output must be md, csv, json or jsonl, got 'xml'");
    expect_cli_error(run_dsa(base + "-r 0"), "-r/--repetitions must be >= 1, got 0");
    expect_cli_error(run_dsa(base + "--budget abc --attn quest"), "--budget 'abc': 'abc' is not an integer");
    expect_cli_error(run_dsa(base + "--batch 0"), "--batch '0': 0 is below the minimum 1");
    expect_cli_error(run_dsa(base + "--kernels --batch 2"), "--batch does not apply to --kernels");
    expect_cli_error(run_dsa(base + "-n 8,,16"), "-n/--n-gen");
    expect_cli_error(run_dsa(base + "--attn nosuch"), "--attn nosuch");
    expect_cli_error(run_dsa(base + "--kernels -p 16"), "do not apply to --kernels");
    expect_cli_error(run_dsa(base + "-m '" + kLlama + "'"),
                     "exactly one of -m/--model DIR or --random-weights");
    expect_cli_error(run_dsa("bench --random-weights /nonexistent/shape.json --device cpu"),
                     "/nonexistent/shape.json");
    expect_cli_error(run_dsa("bench -m /nonexistent/model --device cpu"), "/nonexistent/model");
}

TEST(BenchCli, KernelsNeedTheCudaBackend) {
    const CliResult r = run_dsa("bench --random-weights '" + kShape + "' --kernels -d 32 -r 1 --device cpu");
    expect_cli_error(r, "--kernels needs the CUDA backend", /*after_progress=*/true);
}

}  // namespace
}  // namespace dsa::test
