// The attended set as token spans: what the attention loops iterate over, each token exactly once.
#include <algorithm>

#include "attention/selection.h"

namespace dsa {

int HeadSelection::tokens() const {
    int n = 0;
    for (const TokenSpan& s : spans) n += s.end - s.begin;
    return n;
}

std::vector<TokenSpan> spans_of(std::span<const int> pages, int page_size, int n_tokens,
                                std::span<const TokenSpan> ranges) {
    std::vector<TokenSpan> raw;
    raw.reserve(pages.size() + ranges.size());
    for (int j : pages) raw.push_back({j * page_size, std::min((j + 1) * page_size, n_tokens)});
    for (const TokenSpan& r : ranges) raw.push_back({std::max(r.begin, 0), std::min(r.end, n_tokens)});
    std::sort(raw.begin(), raw.end(),
              [](const TokenSpan& a, const TokenSpan& b) { return a.begin < b.begin; });
    std::vector<TokenSpan> out;
    for (const TokenSpan& s : raw) {
        if (s.begin >= s.end) continue;
        if (!out.empty() && s.begin <= out.back().end) {
            out.back().end = std::max(out.back().end, s.end);
        } else {
            out.push_back(s);
        }
    }
    return out;
}

bool covers_all(std::span<const TokenSpan> spans, int n_tokens) {
    return spans.size() == 1 && spans[0].begin == 0 && spans[0].end == n_tokens;
}

}  // namespace dsa
