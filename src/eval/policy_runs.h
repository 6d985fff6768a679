#pragma once
// The policy x budget grid of the eval commands: `--attn full,quest,nsa --budget 512,1024` runs full once
// (a budget does not apply to it) and every other policy once per budget (or once with its preset's
// budget when --budget is absent).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attention/policy.h"
#include "engine/backend.h"

namespace dsa {

struct PolicyRun {
    std::string attn;           // the --attn item as given ("quest", "my/preset.json")
    AttentionPolicy policy;     // preset + overrides, validated
    std::string label() const;  // "full", "quest B=1024", "nsa B=1024" (B = policy.budget_tokens())
};

// Loads every --attn item (errors name it), applies `base` (the other policy flags: --gqa, --top-n, ...;
// a flag that does not apply to a policy is skipped, as in compare) and each budget, validates. Empty
// `budgets`: the presets' budgets.
std::vector<PolicyRun> expand_policy_runs(const std::vector<std::string>& attn,
                                          const std::vector<int>& budgets,
                                          const std::vector<std::filesystem::path>& search_dirs,
                                          const PolicyOverrides& base = {});

// A backend whose cache uses the policy's page size and whose decode steps attend through the policy.
std::unique_ptr<Backend> make_policy_backend(const std::string& device, const Model& model,
                                             BackendOptions opts, const AttentionPolicy& policy);

}  // namespace dsa
