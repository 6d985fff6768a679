#pragma once
// Attention policies: which cached tokens each decode step attends to. One struct describes a policy
// completely; the CPU reference and the CUDA kernels implement the same semantics (see selection.h and
// docs/sparse-attention.md). Presets live in configs/NAME.json; command-line flags override their fields.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsa {

enum class PolicyKind { Full, Quest, Nsa, Window, Oracle };

// How the query heads of one GQA group share a selection (they share one KV head):
//   Sum:     rank pages by sum_h s_h(p)
//   Max:     rank pages by max_h s_h(p)
//   Softmax: rank pages by sum_h softmax_p(s_h(p) / sqrt(D)) (softmax over the competing pages/tokens)
//   PerHead: every query head selects on its own (up to G x the KV traffic of a shared selection)
enum class GqaMode { Sum, Max, Softmax, PerHead };

struct AttentionPolicy {
    PolicyKind kind = PolicyKind::Full;
    int page_size = 16;    // P: tokens per KV page (16, 32 or 64); also the cache's page size
    int dense_layers = 2;  // the first layers always run full attention (sparsity hurts them most)
    // Softmax: NSA's importance is a summed attention probability, the oracle's maximises recall, and for
    // Quest it measured best among sum, max and softmax (docs/sparse-attention.md).
    GqaMode gqa = GqaMode::Softmax;

    // quest, oracle: token budget B (a multiple of P). quest: B / P pages, the current page included;
    // oracle: the B tokens of largest attention mass.
    int budget = 0;
    // quest: first pages and pages just before the current one that are always selected (inside the budget).
    int sink_pages = 0;
    int recent_pages = 0;

    // nsa: selected blocks (= pages) among the complete pages, init and local ones included.
    int init_blocks = 1;
    int local_blocks = 2;
    int top_n = 16;

    // nsa: sliding window of the last `window` tokens, attended besides the selected blocks.
    // window: the last `window` tokens (the current one included).
    int window = 0;
    // window: the first `sink_tokens` tokens of the sequence (StreamingLLM's attention sinks).
    int sink_tokens = 0;

    // The selection budget in tokens, as reported by compare: quest/oracle B, nsa top_n * P (the sliding
    // window comes on top, as in NSA), window sink_tokens + window, full 0 (everything).
    int budget_tokens() const;
};

// Flag values given on the command line; each one set replaces the preset's field.
struct PolicyOverrides {
    std::optional<int>
        budget;  // quest/oracle: budget; nsa: top_n = budget / P; window: window = budget - sinks
    std::optional<int> page_size;
    std::optional<int> dense_layers;
    std::optional<int> window;
    std::optional<int> top_n;
    std::optional<std::string> gqa;
};

std::string_view policy_kind_name(PolicyKind k);  // "full", "quest", ...
std::string_view gqa_mode_name(GqaMode m);        // "sum", "max", "softmax", "per-head"
// Throw dsa::Error naming `what` (a flag or file key) when `s` is not a known name.
PolicyKind parse_policy_kind(std::string_view s, std::string_view what);
GqaMode parse_gqa_mode(std::string_view s, std::string_view what);

// Checks every field and their combinations; throws dsa::Error with one line naming the flag/key and what
// was expected (e.g. "--budget 100: must be a multiple of the page size 16").
void validate_policy(const AttentionPolicy& p);
void check_page_size(int page_size);           // 16, 32 or 64
void check_budget(int budget, int page_size);  // >= one page and a multiple of the page size

// Reads a preset file (JSON object: "policy" plus the fields of AttentionPolicy in snake_case, e.g.
// {"policy": "quest", "page_size": 16, "budget": 2048, "gqa": "sum"}). Unknown keys, keys that do not apply
// to the policy, and ill-typed values are errors naming the file. Not validated (overrides come first).
AttentionPolicy read_policy_file(const std::filesystem::path& file);

// `--attn` value: a path (contains '/' or ends in ".json") or a preset name looked up as NAME.json in
// `search_dirs`, first match wins. An unknown name is an error listing the directories searched.
AttentionPolicy load_policy(const std::string& name_or_path,
                            const std::vector<std::filesystem::path>& search_dirs);

// Applies the flags that are set. A flag that does not apply to the policy (e.g. --top-n with quest) is an
// error unless `skip_inapplicable` (compare applies one set of flags to a list of policies).
void apply_overrides(AttentionPolicy& p, const PolicyOverrides& o, bool skip_inapplicable = false);

// One line for logs and reports, e.g. "quest P=16 B=2048 gqa=sum dense_layers=2".
std::string describe_policy(const AttentionPolicy& p);

}  // namespace dsa
