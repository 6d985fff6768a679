#include "eval/eval_report.h"

#include <fmt/format.h>

namespace dsa {

namespace {

nlohmann::ordered_json budget_json(const PolicyRun& run) {
    if (run.policy.kind == PolicyKind::Full) return nullptr;
    return run.policy.budget_tokens();
}

std::string budget_cell(const PolicyRun& run) {
    return run.policy.kind == PolicyKind::Full ? "-" : std::to_string(run.policy.budget_tokens());
}

std::string row(const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const std::string& c : cells) s += " " + c + " |";
    return s + "\n";
}

std::string separator(size_t n) {
    std::string s = "|";
    for (size_t i = 0; i < n; ++i) s += " --- |";
    return s + "\n";
}

}  // namespace

double PasskeyRunResult::accuracy() const {
    int correct = 0, total = 0;
    for (const PasskeyCell& c : cells) {
        correct += c.correct();
        total += static_cast<int>(c.trials.size());
    }
    return total > 0 ? static_cast<double>(correct) / total : 0.0;
}

nlohmann::ordered_json passkey_json(const PasskeyReport& r) {
    nlohmann::ordered_json j;
    j["command"] = "passkey";
    j["model"] = r.model;
    j["device"] = r.device;
    j["text"] = r.text;
    j["seed"] = r.seed;
    j["trials"] = r.trials;
    j["contexts"] = r.contexts;
    j["depths"] = r.depths;
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    for (const PasskeyRunResult& run : r.runs) {
        nlohmann::ordered_json jr;
        jr["attn"] = run.run.attn;
        jr["policy"] = describe_policy(run.run.policy);
        jr["budget"] = budget_json(run.run);
        jr["accuracy"] = run.accuracy();
        nlohmann::ordered_json cells = nlohmann::ordered_json::array();
        for (const PasskeyCell& c : run.cells) {
            nlohmann::ordered_json jc;
            jc["ctx"] = c.ctx;
            jc["depth"] = c.depth;
            jc["trials"] = c.trials.size();
            jc["correct"] = c.correct();
            jc["accuracy"] = c.accuracy();
            jc["attended_tokens_mean"] = c.attended_mean;
            nlohmann::ordered_json answers = nlohmann::ordered_json::array();
            for (const PasskeyTrialResult& t : c.trials) {
                answers.push_back({{"key", t.key}, {"output", t.output}, {"correct", t.correct}});
            }
            jc["answers"] = std::move(answers);
            cells.push_back(std::move(jc));
        }
        jr["cells"] = std::move(cells);
        runs.push_back(std::move(jr));
    }
    j["runs"] = std::move(runs);
    return j;
}

nlohmann::ordered_json ppl_json(const PplReport& r) {
    nlohmann::ordered_json j;
    j["command"] = "ppl";
    j["model"] = r.model;
    j["device"] = r.device;
    j["file"] = r.file;
    j["ctx"] = r.ctx;
    j["text_tokens"] = r.text_tokens;
    j["windows_available"] = r.windows_available;
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    for (const PplRunResult& run : r.runs) {
        const PplResult& p = run.result;
        nlohmann::ordered_json jr;
        jr["attn"] = run.run.attn;
        jr["policy"] = describe_policy(run.run.policy);
        jr["budget"] = budget_json(run.run);
        jr["ppl"] = p.nll.ppl();
        jr["ppl_error"] = p.nll.ppl_error();
        jr["nll_mean"] = p.nll.mean();
        jr["tokens_scored"] = p.nll.count();
        jr["windows"] = p.windows;
        jr["attended_tokens_mean"] = p.attended_mean;
        jr["seconds"] = p.seconds;
        runs.push_back(std::move(jr));
    }
    j["runs"] = std::move(runs);
    return j;
}

std::string passkey_table(const PasskeyReport& r) {
    std::vector<std::string> head = {"attn", "budget", "ctx"};
    for (const double d : r.depths) head.push_back(fmt::format("depth {:.2f}", d));
    head.insert(head.end(), {"mean", "attended/step"});
    std::string s = row(head) + separator(head.size());
    for (const PasskeyRunResult& run : r.runs) {
        for (size_t ci = 0; ci < r.contexts.size(); ++ci) {
            std::vector<std::string> cells = {run.run.attn, budget_cell(run.run),
                                              std::to_string(r.contexts[ci])};
            double sum = 0, attended = 0;
            for (size_t di = 0; di < r.depths.size(); ++di) {
                const PasskeyCell& c = run.cells[ci * r.depths.size() + di];
                cells.push_back(fmt::format("{:.2f}", c.accuracy()));
                sum += c.accuracy();
                attended += c.attended_mean;
            }
            const double n = static_cast<double>(r.depths.size());
            cells.push_back(fmt::format("{:.2f}", sum / n));
            cells.push_back(fmt::format("{:.1f}", attended / n));
            s += row(cells);
        }
    }
    return s;
}

std::string ppl_table(const PplReport& r) {
    const std::vector<std::string> head = {"attn", "budget", "ctx", "ppl", "tokens scored", "attended/token"};
    std::string s = row(head) + separator(head.size());
    for (const PplRunResult& run : r.runs) {
        const PplResult& p = run.result;
        s += row({run.run.attn, budget_cell(run.run), std::to_string(r.ctx),
                  fmt::format("{:.4f} ± {:.4f}", p.nll.ppl(), p.nll.ppl_error()),
                  std::to_string(p.nll.count()), fmt::format("{:.1f}", p.attended_mean)});
    }
    return s;
}

}  // namespace dsa
