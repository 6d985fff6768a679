#pragma once
// tokenizer.json "pre_tokenizer": ByteLevel, Split, Digits, Punctuation, Metaspace, Whitespace,
// WhitespaceSplit, Sequence. Each turns a list of splits into a finer list; empty splits are dropped.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_fields.h"

namespace dsa::tok {

struct PreSplit {
    std::string text;
    // Whether the split begins at byte 0 of the original input. HF tracks full alignments; only this bit
    // is ever consulted (Metaspace prepend_scheme "first"). A split that starts after removed or inserted
    // text is counted as not at the start.
    bool at_input_start = false;
};

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    virtual void pre_tokenize(std::vector<PreSplit>& splits) const = 0;
};

// Throws dsa::Error naming the type for an unsupported pre-tokenizer.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec);

// Metaspace's prepend_scheme, shared with the Metaspace decoder. The legacy boolean add_prefix_space
// maps to always/never.
enum class PrependScheme { Always, Never, First };
PrependScheme parse_prepend_scheme(const json& spec, std::string_view where);
// Metaspace's replacement character as UTF-8 (default U+2581 '▁'); exactly one character.
std::string metaspace_replacement(const json& spec, std::string_view where);

}  // namespace dsa::tok
