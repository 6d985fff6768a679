#include "tokenizer/pre_tokenizers.h"

#include <functional>

#include "tokenizer/split.h"
#include "tokenizer/unicode.h"

namespace dsa::tok {

namespace {

// GPT-2's pre-tokenization regex, hard-wired in HF's ByteLevel pre-tokenizer.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Replaces every split by the non-empty sub-ranges `ranges_of` keeps.
void split_each(std::vector<PreSplit>& splits,
                const std::function<std::vector<ByteRange>(const std::string&)>& ranges_of) {
    std::vector<PreSplit> out;
    out.reserve(splits.size());
    for (const auto& s : splits) {
        for (const auto& [b, e] : ranges_of(s.text)) {
            if (b == e) continue;
            out.push_back({s.text.substr(b, e - b), s.at_input_start && b == 0});
        }
    }
    splits = std::move(out);
}

class SequencePreTokenizer final : public PreTokenizer {
public:
    explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
        : parts_(std::move(parts)) {}
    void pre_tokenize(std::vector<PreSplit>& splits) const override {
        for (const auto& p : parts_) p->pre_tokenize(splits);
    }

private:
    std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
public:
    ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
        : add_prefix_space_(add_prefix_space),
          use_regex_(use_regex),
          regex_(kGpt2Pattern, RegexDialect::Oniguruma) {}

    void pre_tokenize(std::vector<PreSplit>& splits) const override {
        if (add_prefix_space_) {
            for (auto& s : splits)
                if (!s.text.empty() && s.text[0] != ' ') s.text = " " + s.text;
        }
        if (use_regex_) {
            split_each(splits, [&](const std::string& text) {
                return apply_behavior(pieces_from_matches(text.size(), regex_.find_all(text)),
                                      SplitBehavior::Isolated);
            });
        }
        for (auto& s : splits) {
            std::string mapped;
            mapped.reserve(s.text.size() * 2);
            for (const char c : s.text) mapped += unicode::byte_to_piece(static_cast<uint8_t>(c));
            s.text = std::move(mapped);
        }
    }

private:
    bool add_prefix_space_, use_regex_;
    Regex regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
public:
    SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
        : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
    void pre_tokenize(std::vector<PreSplit>& splits) const override {
        split_each(splits, [&](const std::string& text) {
            auto pieces = pieces_from_matches(text.size(), pattern_.find_all(text));
            if (invert_)
                for (auto& p : pieces) p.is_match = !p.is_match;
            return apply_behavior(pieces, behavior_);
        });
    }

private:
    Regex pattern_;
    SplitBehavior behavior_;
    bool invert_;
};

// Digits, Punctuation and WhitespaceSplit: a per-character predicate with a delimiter behavior.
class CharClassPreTokenizer final : public PreTokenizer {
public:
    CharClassPreTokenizer(std::function<bool(char32_t)> pred, SplitBehavior behavior)
        : pred_(std::move(pred)), behavior_(behavior) {}
    void pre_tokenize(std::vector<PreSplit>& splits) const override {
        split_each(splits, [&](const std::string& text) {
            return apply_behavior(pieces_from_predicate(text, pred_), behavior_);
        });
    }

private:
    std::function<bool(char32_t)> pred_;
    SplitBehavior behavior_;
};

// Keeps runs of word characters and runs of other non-space characters (Rust regex semantics).
class WhitespacePreTokenizer final : public PreTokenizer {
public:
    WhitespacePreTokenizer() : regex_(R"(\w+|[^\w\s]+)", RegexDialect::RustRegex) {}
    void pre_tokenize(std::vector<PreSplit>& splits) const override {
        split_each(splits, [&](const std::string& text) {
            auto pieces = pieces_from_matches(text.size(), regex_.find_all(text));
            for (auto& p : pieces) p.is_match = !p.is_match;
            return apply_behavior(pieces, SplitBehavior::Removed);
        });
    }

private:
    Regex regex_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
public:
    MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
        : replacement_(std::move(replacement)),
          scheme_(scheme),
          split_(split),
          replacement_pattern_(Regex::escape(replacement_), RegexDialect::Oniguruma),
          space_(" ", RegexDialect::Oniguruma) {}

    void pre_tokenize(std::vector<PreSplit>& splits) const override {
        for (auto& s : splits) {
            s.text = replace_all(s.text, space_, replacement_);
            const bool starts = s.text.compare(0, replacement_.size(), replacement_) == 0;
            const bool prepend = !starts && (scheme_ == PrependScheme::Always ||
                                             (scheme_ == PrependScheme::First && s.at_input_start));
            if (prepend && !s.text.empty()) s.text.insert(0, replacement_);
        }
        if (!split_) return;
        split_each(splits, [&](const std::string& text) {
            return apply_behavior(pieces_from_matches(text.size(), replacement_pattern_.find_all(text)),
                                  SplitBehavior::MergedWithNext);
        });
    }

private:
    std::string replacement_;
    PrependScheme scheme_;
    bool split_;
    Regex replacement_pattern_;
    Regex space_;
};

}  // namespace

std::string metaspace_replacement(const json& spec, std::string_view where) {
    const std::string r =
        spec.contains("replacement") ? string_field(spec, "replacement", where) : "\xE2\x96\x81";
    size_t i = 0;
    if (r.empty() || unicode::find_invalid_utf8(r) != std::string::npos ||
        (unicode::next_code_point(r, i), i != r.size()))
        throw Error("{}: field 'replacement' must be a single character", where);
    return r;
}

PrependScheme parse_prepend_scheme(const json& spec, std::string_view where) {
    const auto it = spec.find("prepend_scheme");
    if (it != spec.end() && !it->is_null()) {
        const std::string s = string_field(spec, "prepend_scheme", where);
        if (s == "always") return PrependScheme::Always;
        if (s == "never") return PrependScheme::Never;
        if (s == "first") return PrependScheme::First;
        throw Error("{}: field 'prepend_scheme' must be always, never or first, not '{}'", where, s);
    }
    return bool_field(spec, "add_prefix_space", true, where) ? PrependScheme::Always : PrependScheme::Never;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec) {
    const std::string type = type_of(spec, "pre_tokenizer");
    const std::string where = "pre_tokenizer " + type;
    if (type == "Sequence") {
        std::vector<std::unique_ptr<PreTokenizer>> parts;
        const json& list = field(spec, "pretokenizers", where);
        if (!list.is_array()) throw Error("{}: field 'pretokenizers' must be a list", where);
        for (const auto& p : list) parts.push_back(make_pre_tokenizer(p));
        return std::make_unique<SequencePreTokenizer>(std::move(parts));
    }
    if (type == "ByteLevel")
        return std::make_unique<ByteLevelPreTokenizer>(bool_field(spec, "add_prefix_space", true, where),
                                                       bool_field(spec, "use_regex", true, where));
    if (type == "Split")
        return std::make_unique<SplitPreTokenizer>(
            pattern_field(spec, where), parse_split_behavior(string_field(spec, "behavior", where), where),
            bool_field(spec, "invert", false, where));
    if (type == "Digits")
        return std::make_unique<CharClassPreTokenizer>(unicode::is_numeric,
                                                       bool_field(spec, "individual_digits", false, where)
                                                           ? SplitBehavior::Isolated
                                                           : SplitBehavior::Contiguous);
    if (type == "Punctuation") {
        const auto it = spec.find("behavior");
        const SplitBehavior b = it == spec.end() || it->is_null()
                                    ? SplitBehavior::Isolated
                                    : parse_split_behavior(string_field(spec, "behavior", where), where);
        return std::make_unique<CharClassPreTokenizer>(unicode::is_punctuation, b);
    }
    if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
    if (type == "WhitespaceSplit")
        return std::make_unique<CharClassPreTokenizer>(unicode::is_whitespace, SplitBehavior::Removed);
    if (type == "Metaspace")
        return std::make_unique<MetaspacePreTokenizer>(metaspace_replacement(spec, where),
                                                       parse_prepend_scheme(spec, where),
                                                       bool_field(spec, "split", true, where));
    throw Error(
        "unsupported pre_tokenizer '{}' (supported: Sequence, ByteLevel, Split, Digits, Punctuation, "
        "Whitespace, WhitespaceSplit, Metaspace)",
        type);
}

}  // namespace dsa::tok
