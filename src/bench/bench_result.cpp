#include "bench/bench_result.h"

#include <fmt/format.h>

#include <cmath>
#include <numeric>

namespace dsa {

namespace {

double mean_of(const std::vector<double>& v) {
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double stddev_of(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean_of(v);
    double ss = 0;
    for (const double x : v) ss += (x - m) * (x - m);
    return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

std::vector<double> tokens_per_second(const BenchResult& r) {
    std::vector<double> ts;
    for (const double ms : r.samples_ms) ts.push_back(ms > 0 ? 1e3 * r.tokens_per_rep() / ms : 0.0);
    return ts;
}

template <typename T>
nlohmann::ordered_json or_null(const std::optional<T>& v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

const char* kind_name(BenchTest t) {
    switch (t) {
        case BenchTest::Prompt:
            return "pp";
        case BenchTest::Gen:
            return "tg";
        case BenchTest::Attention:
            return "attn";
    }
    return "";
}

}  // namespace

std::string BenchResult::test_name() const {
    std::string name;
    switch (test) {
        case BenchTest::Prompt:
            name = fmt::format("pp{}", n_prompt);
            break;
        case BenchTest::Gen:
            name = fmt::format("tg{}", n_gen);
            break;
        case BenchTest::Attention:
            return fmt::format("attn @ d{}", n_depth);
    }
    return n_depth > 0 ? fmt::format("{} @ d{}", name, n_depth) : name;
}

int BenchResult::tokens_per_rep() const {
    switch (test) {
        case BenchTest::Prompt:
            return batch * n_prompt;
        case BenchTest::Gen:
            return batch * n_gen;
        case BenchTest::Attention:
            return 1;
    }
    return 1;
}

double BenchResult::mean_ms() const {
    return mean_of(samples_ms);
}
double BenchResult::stddev_ms() const {
    return stddev_of(samples_ms);
}
double BenchResult::avg_ts() const {
    return mean_of(tokens_per_second(*this));
}
double BenchResult::stddev_ts() const {
    return stddev_of(tokens_per_second(*this));
}
double BenchResult::ms_per_token() const {
    return mean_ms() / tokens_per_rep();
}

double BenchResult::gbps() const {
    const double ms = ms_per_token();
    return ms > 0 ? bytes.total() / (ms * 1e6) : 0.0;
}

std::optional<double> BenchResult::bw_pct() const {
    if (id.bw_gbs <= 0) return std::nullopt;
    return 100.0 * gbps() / id.bw_gbs;
}

nlohmann::ordered_json bench_record(const BenchResult& r) {
    nlohmann::ordered_json j;
    j["model"] = r.id.model;
    j["arch"] = r.id.arch;
    j["params"] = r.id.params;
    j["model_bytes"] = r.id.model_bytes;
    j["backend"] = r.id.backend;
    j["threads"] = r.id.threads;
    j["attn"] = r.attn;
    j["policy"] = r.policy;
    j["budget"] = or_null(r.budget);
    j["batch"] = r.batch;
    j["kind"] = kind_name(r.test);
    j["test"] = r.test_name();
    const bool attention = r.test == BenchTest::Attention;
    if (!attention) {
        j["n_prompt"] = r.n_prompt;
        j["n_gen"] = r.n_gen;
    }
    j["n_depth"] = r.n_depth;
    j["reps"] = r.samples_ms.size();
    if (attention) {
        j["avg_ms"] = r.mean_ms();
        j["stddev_ms"] = r.stddev_ms();
    } else {
        j["avg_ns"] = r.mean_ms() * 1e6;
        j["stddev_ns"] = r.stddev_ms() * 1e6;
        j["avg_ts"] = r.avg_ts();
        j["stddev_ts"] = r.stddev_ts();
        j["ms_per_token"] = r.ms_per_token();
    }
    j["attended_tokens"] = or_null(r.attended_tokens);
    j[attention ? "bytes_per_step" : "bytes_per_token"] = r.bytes.total();
    if (!attention) j["weight_bytes"] = r.bytes.weights;
    j["kv_bytes"] = r.bytes.kv;
    j["meta_bytes"] = r.bytes.meta;
    j["gbps"] = r.gbps();
    j["bw_gbps"] = r.id.bw_gbs > 0 ? nlohmann::ordered_json(r.id.bw_gbs) : nlohmann::ordered_json(nullptr);
    j["bw_pct"] = or_null(r.bw_pct());
    if (attention) {
        j["speedup"] = or_null(r.speedup);
        j["samples_ms"] = r.samples_ms;
    } else {
        std::vector<double> ns;
        for (const double ms : r.samples_ms) ns.push_back(ms * 1e6);
        j["samples_ns"] = ns;
        j["samples_ts"] = tokens_per_second(r);
    }
    return j;
}

}  // namespace dsa
