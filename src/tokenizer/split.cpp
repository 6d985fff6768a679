#include "tokenizer/split.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dsa::tok {

SplitBehavior parse_split_behavior(std::string_view name, std::string_view where) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower == "removed") return SplitBehavior::Removed;
    if (lower == "isolated") return SplitBehavior::Isolated;
    if (lower == "merged_with_previous" || lower == "mergedwithprevious")
        return SplitBehavior::MergedWithPrevious;
    if (lower == "merged_with_next" || lower == "mergedwithnext") return SplitBehavior::MergedWithNext;
    if (lower == "contiguous") return SplitBehavior::Contiguous;
    throw Error(
        "{}: unknown split behavior '{}' (expected removed, isolated, merged_with_previous, "
        "merged_with_next or contiguous)",
        where, name);
}

std::vector<Piece> pieces_from_matches(size_t text_size, const std::vector<ByteRange>& matches) {
    if (text_size == 0) return {{0, 0, false}};
    std::vector<Piece> pieces;
    pieces.reserve(matches.size() * 2 + 1);
    size_t prev = 0;
    for (const auto& [s, e] : matches) {
        if (prev != s) pieces.push_back({prev, s, false});
        pieces.push_back({s, e, true});
        prev = e;
    }
    if (prev != text_size) pieces.push_back({prev, text_size, false});
    return pieces;
}

std::vector<Piece> pieces_from_predicate(std::string_view text, const std::function<bool(char32_t)>& pred) {
    if (text.empty()) return {{0, 0, false}};
    std::vector<Piece> pieces;
    size_t last = 0;
    for (size_t i = 0; i < text.size();) {
        const size_t start = i;
        const char32_t cp = unicode::next_code_point(text, i);
        if (!pred(cp)) continue;
        if (last < start) pieces.push_back({last, start, false});
        pieces.push_back({start, i, true});
        last = i;
    }
    if (last < text.size()) pieces.push_back({last, text.size(), false});
    return pieces;
}

std::vector<ByteRange> apply_behavior(const std::vector<Piece>& pieces, SplitBehavior behavior) {
    std::vector<ByteRange> out;
    out.reserve(pieces.size());
    bool previous_match = false;
    switch (behavior) {
        case SplitBehavior::Removed:
            for (const auto& p : pieces)
                if (!p.is_match) out.emplace_back(p.start, p.end);
            break;
        case SplitBehavior::Isolated:
            for (const auto& p : pieces) out.emplace_back(p.start, p.end);
            break;
        case SplitBehavior::Contiguous:
            for (const auto& p : pieces) {
                if (p.is_match == previous_match && !out.empty()) {
                    out.back().second = p.end;
                } else {
                    out.emplace_back(p.start, p.end);
                }
                previous_match = p.is_match;
            }
            break;
        case SplitBehavior::MergedWithPrevious:
            for (const auto& p : pieces) {
                if (p.is_match && !previous_match && !out.empty()) {
                    out.back().second = p.end;
                } else {
                    out.emplace_back(p.start, p.end);
                }
                previous_match = p.is_match;
            }
            break;
        case SplitBehavior::MergedWithNext:
            for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
                if (it->is_match && !previous_match && !out.empty()) {
                    out.back().first = it->start;
                } else {
                    out.emplace_back(it->start, it->end);
                }
                previous_match = it->is_match;
            }
            std::reverse(out.begin(), out.end());
            break;
    }
    return out;
}

std::string replace_all(std::string_view text, const Regex& re, std::string_view content) {
    std::string out;
    size_t prev = 0;
    for (const auto& [s, e] : re.find_all(text)) {
        out.append(text.substr(prev, s - prev));
        out.append(content);
        prev = e;
    }
    out.append(text.substr(prev));
    return out;
}

}  // namespace dsa::tok
