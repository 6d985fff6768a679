#pragma once
// The attention-policy flags shared by generate and compare: --attn NAME|PATH (a preset from configs/ or a
// JSON file) and the flags that override the preset's fields.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/policy.h"

namespace dsa::cli {

struct AttnOverrideFlags {
    int page_size = 0, dense_layers = 0, window = 0, top_n = 0;
    std::string gqa;
    CLI::Option *page_size_opt = nullptr, *dense_layers_opt = nullptr, *window_opt = nullptr,
                *top_n_opt = nullptr, *gqa_opt = nullptr;
};

// Adds --page-size --dense-layers --window --top-n --gqa (not --attn and --budget: generate takes one of
// each, compare a list).
void add_attn_override_flags(CLI::App* cmd, AttnOverrideFlags& f);

// The overrides the user gave, budget included (none when `budget` is null).
PolicyOverrides overrides_of(const AttnOverrideFlags& f, const int* budget);

// Loads the preset, applies the overrides and validates the result.
AttentionPolicy resolve_policy(const std::string& attn, const PolicyOverrides& o, bool skip_inapplicable);

}  // namespace dsa::cli
