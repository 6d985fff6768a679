// Presets (configs/NAME.json) and the command-line flags that override their fields.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "attention/policy.h"
#include "util/error.h"

namespace dsa {

namespace {

// Keys a preset of each policy may carry ("policy" itself aside).
bool key_applies(std::string_view key, PolicyKind kind) {
    const auto in = [&](std::initializer_list<PolicyKind> kinds) {
        return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
    };
    if (key == "page_size") return true;
    if (key == "dense_layers") return kind != PolicyKind::Full;
    if (key == "gqa") return in({PolicyKind::Quest, PolicyKind::Nsa, PolicyKind::Oracle});
    if (key == "budget") return in({PolicyKind::Quest, PolicyKind::Oracle});
    if (key == "sink_pages" || key == "recent_pages") return kind == PolicyKind::Quest;
    if (key == "init_blocks" || key == "local_blocks" || key == "top_n") return kind == PolicyKind::Nsa;
    if (key == "window") return in({PolicyKind::Nsa, PolicyKind::Window});
    if (key == "sink_tokens") return kind == PolicyKind::Window;
    return false;
}

int* int_field(AttentionPolicy& p, std::string_view key) {
    if (key == "page_size") return &p.page_size;
    if (key == "dense_layers") return &p.dense_layers;
    if (key == "budget") return &p.budget;
    if (key == "sink_pages") return &p.sink_pages;
    if (key == "recent_pages") return &p.recent_pages;
    if (key == "init_blocks") return &p.init_blocks;
    if (key == "local_blocks") return &p.local_blocks;
    if (key == "top_n") return &p.top_n;
    if (key == "window") return &p.window;
    if (key == "sink_tokens") return &p.sink_tokens;
    return nullptr;
}

bool is_path(const std::string& s) {
    return s.find('/') != std::string::npos || (s.size() > 5 && s.ends_with(".json"));
}

}  // namespace

AttentionPolicy read_policy_file(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw Error("{}: cannot open the attention preset", file.string());
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error("{}: not valid JSON ({})", file.string(), e.what());
    }
    if (!j.is_object()) throw Error("{}: expected a JSON object", file.string());
    if (!j.contains("policy") || !j["policy"].is_string()) {
        throw Error("{}: missing string key \"policy\" (full, quest, nsa, window or oracle)", file.string());
    }
    AttentionPolicy p;
    p.kind = parse_policy_kind(j["policy"].get<std::string>(), fmt::format("{}: \"policy\"", file.string()));
    for (const auto& [key, value] : j.items()) {
        if (key == "policy") continue;
        if (!key_applies(key, p.kind)) {
            throw Error("{}: key \"{}\" is unknown or does not apply to policy {}", file.string(), key,
                        policy_kind_name(p.kind));
        }
        if (key == "gqa") {
            if (!value.is_string()) throw Error("{}: \"gqa\" must be a string", file.string());
            p.gqa = parse_gqa_mode(value.get<std::string>(), fmt::format("{}: \"gqa\"", file.string()));
            continue;
        }
        if (!value.is_number_integer()) throw Error("{}: \"{}\" must be an integer", file.string(), key);
        *int_field(p, key) = value.get<int>();
    }
    return p;
}

AttentionPolicy load_policy(const std::string& name_or_path,
                            const std::vector<std::filesystem::path>& search_dirs) {
    if (name_or_path.empty()) throw Error("--attn: empty policy name");
    if (is_path(name_or_path)) return read_policy_file(name_or_path);
    std::string searched;
    for (const auto& dir : search_dirs) {
        const auto file = dir / (name_or_path + ".json");
        if (std::filesystem::is_regular_file(file)) return read_policy_file(file);
        searched += (searched.empty() ? "" : ", ") + dir.string();
    }
    throw Error("--attn {}: no preset {}.json in {} (give a preset name or a path to a .json file)",
                name_or_path, name_or_path, searched.empty() ? "(no preset directory)" : searched);
}

void apply_overrides(AttentionPolicy& p, const PolicyOverrides& o, bool skip_inapplicable) {
    const std::string_view name = policy_kind_name(p.kind);
    const auto applies = [&](bool set, std::string_view flag, bool ok) {
        if (!set) return false;
        if (ok) return true;
        if (skip_inapplicable) return false;
        throw Error("{} does not apply to --attn {}", flag, name);
    };
    const bool nsa = p.kind == PolicyKind::Nsa, win = p.kind == PolicyKind::Window;
    if (applies(o.page_size.has_value(), "--page-size", true)) p.page_size = *o.page_size;
    if (applies(o.dense_layers.has_value(), "--dense-layers", key_applies("dense_layers", p.kind))) {
        p.dense_layers = *o.dense_layers;
    }
    if (applies(o.gqa.has_value(), "--gqa", key_applies("gqa", p.kind)))
        p.gqa = parse_gqa_mode(*o.gqa, "--gqa");
    if (nsa && o.budget && o.top_n)
        throw Error("--budget and --top-n both set the nsa block count: give one");
    if (win && o.budget && o.window) throw Error("--budget and --window both set the window size: give one");
    if (applies(o.window.has_value(), "--window", nsa || win)) p.window = *o.window;
    if (applies(o.top_n.has_value(), "--top-n", nsa)) p.top_n = *o.top_n;
    if (applies(o.budget.has_value(), "--budget", p.kind != PolicyKind::Full)) {
        const int b = *o.budget;
        check_page_size(p.page_size);
        check_budget(b, p.page_size);
        if (nsa) {
            p.top_n = b / p.page_size;
        } else if (win) {
            if (b <= p.sink_tokens) {
                throw Error("--budget {}: must exceed the window policy's {} sink tokens", b, p.sink_tokens);
            }
            p.window = b - p.sink_tokens;
        } else {
            p.budget = b;
        }
    }
}

}  // namespace dsa
