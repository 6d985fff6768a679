// The entry point of selection: dense layers, the full policy, input checks, and the per-policy dispatch.
#include "attention/selection.h"
#include "util/error.h"

namespace dsa {

GroupSelection dense_selection(int n_tokens, int page_size) {
    HeadSelection head;
    const int n_pages = (n_tokens + page_size - 1) / page_size;
    for (int j = 0; j < n_pages; ++j) head.pages.push_back(j);
    head.spans.push_back({0, n_tokens});
    GroupSelection sel;
    sel.dense = true;
    sel.heads.push_back(std::move(head));
    return sel;
}

GroupSelection select_tokens(const AttentionPolicy& policy, int layer, const SelectInput& in) {
    if (in.n_tokens < 1) throw Error("select_tokens: no cached tokens");
    if (in.page_size != policy.page_size) {
        throw Error("select_tokens: the cache's page size {} differs from the policy's {}", in.page_size,
                    policy.page_size);
    }
    const size_t n_pages = static_cast<size_t>((in.n_tokens + in.page_size - 1) / in.page_size);
    if (in.meta.size() != n_pages) {
        throw Error("select_tokens: {} page metadata entries for {} tokens in pages of {}", in.meta.size(),
                    in.n_tokens, in.page_size);
    }
    if (policy.kind == PolicyKind::Full || layer < policy.dense_layers) {
        return dense_selection(in.n_tokens, in.page_size);
    }
    switch (policy.kind) {
        case PolicyKind::Quest:
            return select_quest(policy, in);
        case PolicyKind::Nsa:
            return select_nsa(policy, in);
        case PolicyKind::Window:
            return select_window(policy, in);
        case PolicyKind::Oracle:
            if (in.keys.size() != n_pages)
                throw Error("select_tokens: the oracle needs the keys of every page");
            return select_oracle(policy, in);
        case PolicyKind::Full:
            break;
    }
    return dense_selection(in.n_tokens, in.page_size);
}

}  // namespace dsa
