// StreamingLLM (Xiao et al., ICLR 2024): the first tokens act as attention sinks; with them and a window
// of recent tokens the attention stays stable at any length. Token-granular, no scores.
#include "attention/selection.h"

namespace dsa {

GroupSelection select_window(const AttentionPolicy& policy, const SelectInput& in) {
    const TokenSpan ranges[2] = {{0, policy.sink_tokens}, {in.n_tokens - policy.window, in.n_tokens}};
    HeadSelection head;
    head.spans = spans_of({}, in.page_size, in.n_tokens, ranges);
    if (covers_all(head.spans, in.n_tokens)) return dense_selection(in.n_tokens, in.page_size);
    GroupSelection sel;
    sel.heads.push_back(std::move(head));
    return sel;
}

}  // namespace dsa
