#pragma once
// HF `tokenizers` splitting machinery: a pattern's matches become pieces that cover the whole text
// (Pattern::find_matches), and a delimiter behavior decides which pieces survive and how delimiters
// merge with their neighbours (NormalizedString::split).
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace dsa::tok {

struct Piece {
    size_t start, end;  // byte offsets
    bool is_match;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Parses "removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous" (as in
// tokenizer.json, any case); throws dsa::Error naming `where` otherwise.
SplitBehavior parse_split_behavior(std::string_view name, std::string_view where);

// Pieces for a list of non-overlapping matches (sorted): gaps become non-matching pieces. An empty text
// gives one empty non-matching piece, as in HF.
std::vector<Piece> pieces_from_matches(size_t text_size, const std::vector<ByteRange>& matches);
// Every code point for which `pred` holds is its own match (HF's Fn(char) -> bool pattern).
std::vector<Piece> pieces_from_predicate(std::string_view text, const std::function<bool(char32_t)>& pred);

// The byte ranges kept by `behavior`, in order; some may be empty (callers drop empty splits, as HF does).
std::vector<ByteRange> apply_behavior(const std::vector<Piece>& pieces, SplitBehavior behavior);

// Every match of `re` in `text` replaced by `content` (HF NormalizedString::replace and the Replace decoder).
std::string replace_all(std::string_view text, const Regex& re, std::string_view content);

}  // namespace dsa::tok
