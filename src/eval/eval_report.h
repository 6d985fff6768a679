#pragma once
// What `dsa eval passkey` and `dsa eval ppl` print: a markdown table (default) or one JSON object
// (--json). The JSON fields are listed in each command's --help and in docs/evaluation.md.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/passkey.h"
#include "eval/perplexity.h"
#include "eval/policy_runs.h"

namespace dsa {

struct PasskeyRunResult {
    PolicyRun run;
    std::vector<PasskeyCell> cells;  // contexts x depths, ctx-major
    double accuracy() const;         // over every trial of every cell
};

struct PasskeyReport {
    std::string model;   // -m
    std::string device;  // backend name
    std::string text;    // filler book
    uint64_t seed = 0;
    int trials = 0;
    std::vector<int> contexts;
    std::vector<double> depths;
    std::vector<PasskeyRunResult> runs;
};

struct PplRunResult {
    PolicyRun run;
    PplResult result;
};

struct PplReport {
    std::string model;
    std::string device;
    std::string file;
    int ctx = 0;
    int64_t text_tokens = 0;
    int windows_available = 0;
    std::vector<PplRunResult> runs;
};

// `budget` field: the policy's selection budget in tokens (PolicyRun::policy.budget_tokens()), null for full.
nlohmann::ordered_json passkey_json(const PasskeyReport& r);
nlohmann::ordered_json ppl_json(const PplReport& r);

// One row per (run, ctx): accuracy per depth, the mean over depths, and attended tokens per decode step.
std::string passkey_table(const PasskeyReport& r);
// One row per run: PPL +/- error, tokens scored, attended tokens per scored token.
std::string ppl_table(const PplReport& r);

}  // namespace dsa
