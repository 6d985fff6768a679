#include "eval/policy_runs.h"

#include <fmt/format.h>

namespace dsa {

namespace fs = std::filesystem;

std::string PolicyRun::label() const {
    if (policy.kind == PolicyKind::Full) return "full";
    return fmt::format("{} B={}", attn, policy.budget_tokens());
}

std::vector<PolicyRun> expand_policy_runs(const std::vector<std::string>& attn,
                                          const std::vector<int>& budgets,
                                          const std::vector<fs::path>& search_dirs,
                                          const PolicyOverrides& base) {
    std::vector<PolicyRun> runs;
    for (const std::string& name : attn) {
        const AttentionPolicy preset = load_policy(name, search_dirs);
        const bool per_budget = preset.kind != PolicyKind::Full && !budgets.empty();
        for (size_t i = 0; i < (per_budget ? budgets.size() : 1); ++i) {
            PolicyRun run{name, preset};
            PolicyOverrides o = base;
            if (per_budget) o.budget = budgets[i];
            apply_overrides(run.policy, o, true);
            validate_policy(run.policy);
            runs.push_back(run);
        }
    }
    return runs;
}

std::unique_ptr<Backend> make_policy_backend(const std::string& device, const Model& model,
                                             BackendOptions opts, const AttentionPolicy& policy) {
    opts.page_size = policy.page_size;
    opts.attention = policy;
    return make_backend(device, model, opts);
}

}  // namespace dsa
