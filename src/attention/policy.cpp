// Policy names, validation and the one-line description.
#include "attention/policy.h"

#include <fmt/format.h>

#include "util/error.h"

namespace dsa {

int AttentionPolicy::budget_tokens() const {
    switch (kind) {
        case PolicyKind::Full:
            return 0;
        case PolicyKind::Quest:
        case PolicyKind::Oracle:
            return budget;
        case PolicyKind::Nsa:
            return top_n * page_size;
        case PolicyKind::Window:
            return sink_tokens + window;
    }
    return 0;
}

std::string_view policy_kind_name(PolicyKind k) {
    switch (k) {
        case PolicyKind::Full:
            return "full";
        case PolicyKind::Quest:
            return "quest";
        case PolicyKind::Nsa:
            return "nsa";
        case PolicyKind::Window:
            return "window";
        case PolicyKind::Oracle:
            return "oracle";
    }
    return "?";
}

std::string_view gqa_mode_name(GqaMode m) {
    switch (m) {
        case GqaMode::Sum:
            return "sum";
        case GqaMode::Max:
            return "max";
        case GqaMode::Softmax:
            return "softmax";
        case GqaMode::PerHead:
            return "per-head";
    }
    return "?";
}

PolicyKind parse_policy_kind(std::string_view s, std::string_view what) {
    for (PolicyKind k :
         {PolicyKind::Full, PolicyKind::Quest, PolicyKind::Nsa, PolicyKind::Window, PolicyKind::Oracle}) {
        if (s == policy_kind_name(k)) return k;
    }
    throw Error("{} '{}': unknown attention policy (expected full, quest, nsa, window or oracle)", what, s);
}

GqaMode parse_gqa_mode(std::string_view s, std::string_view what) {
    for (GqaMode m : {GqaMode::Sum, GqaMode::Max, GqaMode::Softmax, GqaMode::PerHead}) {
        if (s == gqa_mode_name(m)) return m;
    }
    throw Error("{} '{}': unknown GQA reduction (expected sum, max, softmax or per-head)", what, s);
}

void check_page_size(int page_size) {
    if (page_size != 16 && page_size != 32 && page_size != 64) {
        throw Error("--page-size {}: must be 16, 32 or 64", page_size);
    }
}

void check_budget(int budget, int page_size) {
    if (budget < page_size) throw Error("--budget {}: smaller than one page ({} tokens)", budget, page_size);
    if (budget % page_size != 0)
        throw Error("--budget {}: must be a multiple of the page size {}", budget, page_size);
}

void validate_policy(const AttentionPolicy& p) {
    check_page_size(p.page_size);
    if (p.dense_layers < 0) throw Error("--dense-layers {}: must be >= 0", p.dense_layers);
    if (p.window < 0) throw Error("--window {}: must be >= 0", p.window);
    switch (p.kind) {
        case PolicyKind::Full:
            return;
        case PolicyKind::Oracle:
            check_budget(p.budget, p.page_size);
            return;
        case PolicyKind::Quest: {
            check_budget(p.budget, p.page_size);
            if (p.sink_pages < 0) throw Error("sink_pages {}: must be >= 0", p.sink_pages);
            if (p.recent_pages < 0) throw Error("recent_pages {}: must be >= 0", p.recent_pages);
            const int pages = p.budget / p.page_size;
            if (p.sink_pages + p.recent_pages + 1 > pages) {
                throw Error(
                    "--budget {}: {} pages cannot hold sink_pages {} + recent_pages {} + the current page",
                    p.budget, pages, p.sink_pages, p.recent_pages);
            }
            return;
        }
        case PolicyKind::Nsa: {
            if (p.init_blocks < 0) throw Error("init_blocks {}: must be >= 0", p.init_blocks);
            if (p.local_blocks < 0) throw Error("local_blocks {}: must be >= 0", p.local_blocks);
            if (p.top_n < 1) throw Error("--top-n {}: must be >= 1", p.top_n);
            if (p.top_n < p.init_blocks + p.local_blocks) {
                throw Error(
                    "--top-n {}: must be >= init_blocks {} + local_blocks {} (they are part of the top-n)",
                    p.top_n, p.init_blocks, p.local_blocks);
            }
            return;
        }
        case PolicyKind::Window: {
            if (p.sink_tokens < 0) throw Error("sink_tokens {}: must be >= 0", p.sink_tokens);
            if (p.window < 1) {
                throw Error("--window {}: the window policy needs at least the current token (>= 1)",
                            p.window);
            }
            return;
        }
    }
}

std::string describe_policy(const AttentionPolicy& p) {
    std::string s = fmt::format("{} P={}", policy_kind_name(p.kind), p.page_size);
    switch (p.kind) {
        case PolicyKind::Full:
            return s;
        case PolicyKind::Quest:
            s += fmt::format(" B={} gqa={}", p.budget, gqa_mode_name(p.gqa));
            if (p.sink_pages > 0) s += fmt::format(" sink_pages={}", p.sink_pages);
            if (p.recent_pages > 0) s += fmt::format(" recent_pages={}", p.recent_pages);
            break;
        case PolicyKind::Nsa:
            s += fmt::format(" init={} local={} top_n={} window={} gqa={}", p.init_blocks, p.local_blocks,
                             p.top_n, p.window, gqa_mode_name(p.gqa));
            break;
        case PolicyKind::Window:
            s += fmt::format(" sinks={} window={}", p.sink_tokens, p.window);
            break;
        case PolicyKind::Oracle:
            s += fmt::format(" B={} gqa={}", p.budget, gqa_mode_name(p.gqa));
            break;
    }
    return s + fmt::format(" dense_layers={}", p.dense_layers);
}

}  // namespace dsa
