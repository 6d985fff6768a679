#include "cli/attn_flags.h"

#include "util/paths.h"

namespace dsa::cli {

void add_attn_override_flags(CLI::App* cmd, AttnOverrideFlags& f) {
    f.page_size_opt =
        cmd->add_option("--page-size", f.page_size, "KV page size in tokens: 16, 32 or 64 (preset's)");
    f.dense_layers_opt = cmd->add_option("--dense-layers", f.dense_layers,
                                         "First layers that always run full attention (preset's)");
    f.window_opt = cmd->add_option("--window", f.window,
                                   "nsa: sliding-window tokens; window: recent tokens attended (preset's)");
    f.top_n_opt =
        cmd->add_option("--top-n", f.top_n, "nsa: selected blocks, init and local included (preset's)");
    f.gqa_opt = cmd->add_option(
        "--gqa", f.gqa, "Group reduction of the page scores: sum, max, softmax or per-head (preset's)");
}

PolicyOverrides overrides_of(const AttnOverrideFlags& f, const int* budget) {
    PolicyOverrides o;
    if (budget != nullptr) o.budget = *budget;
    if (f.page_size_opt->count() > 0) o.page_size = f.page_size;
    if (f.dense_layers_opt->count() > 0) o.dense_layers = f.dense_layers;
    if (f.window_opt->count() > 0) o.window = f.window;
    if (f.top_n_opt->count() > 0) o.top_n = f.top_n;
    if (f.gqa_opt->count() > 0) o.gqa = f.gqa;
    return o;
}

AttentionPolicy resolve_policy(const std::string& attn, const PolicyOverrides& o, bool skip_inapplicable) {
    AttentionPolicy p = load_policy(attn, preset_search_dirs());
    apply_overrides(p, o, skip_inapplicable);
    validate_policy(p);
    return p;
}

}  // namespace dsa::cli
