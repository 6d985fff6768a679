#include "bench/bench_output.h"

#include <fmt/format.h>

#include <string>
#include <vector>

namespace dsa {

namespace {

std::string human_count(double n) {
    if (n >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
    return fmt::format("{:.2f} K", n / 1e3);
}

std::string pct_or_dash(const std::optional<double>& v) {
    return v ? fmt::format("{:.1f}", *v) : "-";
}

// Enough digits for sub-millisecond steps of small models and for multi-second ones.
std::string ms_text(double ms) {
    return ms < 10 ? fmt::format("{:.3f}", ms) : fmt::format("{:.2f}", ms);
}

std::string md_line(const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const std::string& c : cells) s += " " + c + " |";
    return s + "\n";
}

// Numeric columns right-aligned, as llama-bench prints them.
std::string md_rule(const std::vector<bool>& numeric) {
    std::string s = "|";
    for (const bool n : numeric) s += n ? " ---: |" : " --- |";
    return s + "\n";
}

std::string md_header(bool kernels) {
    if (kernels) {
        return md_line({"model", "params", "backend", "attn", "budget", "test", "ms", "MB", "GB/s", "% BW",
                        "speedup"}) +
               md_rule({false, true, false, false, true, false, true, true, true, true, true});
    }
    return md_line({"model", "params", "backend", "attn", "budget", "batch", "test", "t/s", "ms/tok", "GB/s",
                    "% BW"}) +
           md_rule({false, true, false, false, true, true, false, true, true, true, true});
}

std::string md_row(const BenchResult& r, bool kernels) {
    const std::string budget = r.budget ? std::to_string(*r.budget) : "-";
    if (kernels) {
        return md_line({r.id.model, human_count(static_cast<double>(r.id.params)), r.id.backend, r.attn,
                        budget, r.test_name(),
                        fmt::format("{} ± {}", ms_text(r.mean_ms()), ms_text(r.stddev_ms())),
                        fmt::format("{:.2f}", r.bytes.total() / 1e6), fmt::format("{:.1f}", r.gbps()),
                        pct_or_dash(r.bw_pct()), r.speedup ? fmt::format("{:.2f}x", *r.speedup) : "-"});
    }
    return md_line({r.id.model, human_count(static_cast<double>(r.id.params)), r.id.backend, r.attn, budget,
                    std::to_string(r.batch), r.test_name(),
                    fmt::format("{:.2f} ± {:.2f}", r.avg_ts(), r.stddev_ts()), ms_text(r.ms_per_token()),
                    fmt::format("{:.1f}", r.gbps()), pct_or_dash(r.bw_pct())});
}

std::string csv_quote(const std::string& s) {
    std::string q = "\"";
    for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

// null: empty; strings quoted; arrays (samples) as one quoted field of space-separated numbers.
std::string csv_cell(const nlohmann::ordered_json& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return csv_quote(v.get<std::string>());
    if (v.is_array()) {
        std::string s;
        for (const auto& x : v) {
            if (!s.empty()) s += ' ';
            s += x.dump();
        }
        return csv_quote(s);
    }
    return v.dump();
}

}  // namespace

BenchWriter::BenchWriter(BenchFormat format, std::FILE* out, bool kernels)
    : format_(format), out_(out), kernels_(kernels) {}

void BenchWriter::row(const BenchResult& r) {
    std::string text;
    switch (format_) {
        case BenchFormat::Md:
            if (rows_ == 0) text = md_header(kernels_);
            text += md_row(r, kernels_);
            break;
        case BenchFormat::Csv: {
            const nlohmann::ordered_json j = bench_record(r);
            std::string header, line;
            for (const auto& [key, value] : j.items()) {
                if (!header.empty()) {
                    header += ',';
                    line += ',';
                }
                header += key;
                line += csv_cell(value);
            }
            if (rows_ == 0) text = header + "\n";
            text += line + "\n";
            break;
        }
        case BenchFormat::Json:
            text = (rows_ == 0 ? "[\n  " : ",\n  ") + bench_record(r).dump();
            break;
        case BenchFormat::Jsonl:
            text = bench_record(r).dump() + "\n";
            break;
    }
    ++rows_;
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
}

void BenchWriter::finish() {
    if (format_ != BenchFormat::Json) return;
    const char* end = rows_ == 0 ? "[]\n" : "\n]\n";
    std::fputs(end, out_);
    std::fflush(out_);
}

}  // namespace dsa
