#include "tokenizer/added_tokens.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace dsa::tok {

// Byte trie over the token patterns; find() gives HF's aho-corasick LeftmostLongest matches: scanning
// left to right, the first position where any pattern matches, and there the longest pattern.
struct AddedVocabulary::Matcher {
    struct Node {
        std::vector<std::pair<unsigned char, int>> children;
        int token = -1;  // index into tokens_ of the pattern ending here
    };
    std::vector<Node> nodes{1};
    std::array<bool, 256> first_byte{};  // quick rejection of positions no pattern starts with

    void add(std::string_view pattern, int token) {
        if (pattern.empty()) return;
        int n = 0;
        for (const char ch : pattern) {
            const auto c = static_cast<unsigned char>(ch);
            auto& kids = nodes[static_cast<size_t>(n)].children;
            const auto it =
                std::find_if(kids.begin(), kids.end(), [c](const auto& k) { return k.first == c; });
            if (it != kids.end()) {
                n = it->second;
            } else {
                nodes[static_cast<size_t>(n)].children.emplace_back(c, static_cast<int>(nodes.size()));
                n = static_cast<int>(nodes.size());
                nodes.emplace_back();
            }
        }
        if (nodes[static_cast<size_t>(n)].token < 0)
            nodes[static_cast<size_t>(n)].token = token;  // first one wins
        first_byte[static_cast<unsigned char>(pattern[0])] = true;
    }

    bool empty() const { return nodes[0].children.empty(); }

    struct Match {
        size_t start, end;
        int token;
    };
    std::vector<Match> find(std::string_view text) const {
        std::vector<Match> out;
        for (size_t i = 0; i < text.size();) {
            if (!first_byte[static_cast<unsigned char>(text[i])]) {
                ++i;
                continue;
            }
            int n = 0, best_token = -1;
            size_t best_end = 0;
            for (size_t j = i; j < text.size(); ++j) {
                const auto c = static_cast<unsigned char>(text[j]);
                const auto& kids = nodes[static_cast<size_t>(n)].children;
                const auto it =
                    std::find_if(kids.begin(), kids.end(), [c](const auto& k) { return k.first == c; });
                if (it == kids.end()) break;
                n = it->second;
                if (nodes[static_cast<size_t>(n)].token >= 0)
                    best_token = nodes[static_cast<size_t>(n)].token, best_end = j + 1;
            }
            if (best_token < 0) {
                ++i;
                continue;
            }
            out.push_back({i, best_end, best_token});
            i = best_end;
        }
        return out;
    }
};

namespace {

// Rust regex's \w (HF checks single_word boundaries with `\w$` and `^\w`).
bool is_word_char(std::string_view text, size_t at) {
    static const Regex word(R"(\A\w\z)", RegexDialect::RustRegex);
    return !word.find_all(text.substr(at, unicode::sequence_length(static_cast<unsigned char>(text[at]))))
                .empty();
}

bool ends_with_word(std::string_view s) {
    if (s.empty()) return false;
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    return is_word_char(s, start);
}

bool starts_with_word(std::string_view s) {
    return !s.empty() && is_word_char(s, 0);
}

// Start of the run of whitespace that ends `s`.
size_t trailing_space_start(std::string_view s) {
    size_t end = s.size();
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!unicode::is_whitespace(unicode::next_code_point(s, i))) break;
        end = start;
    }
    return end;
}

// Length of the run of whitespace that starts `s`.
size_t leading_space_length(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        size_t next = i;
        if (!unicode::is_whitespace(unicode::next_code_point(s, next))) break;
        i = next;
    }
    return i;
}

}  // namespace

AddedVocabulary::AddedVocabulary(const json& list, const BpeModel& model, const Normalizer* normalizer)
    : raw_(std::make_unique<Matcher>()), normalized_(std::make_unique<Matcher>()) {
    if (list.is_null()) return;
    if (!list.is_array()) throw Error("added_tokens: expected a list");
    // HF adds the tokens one by one in file order and ignores the stored ids: content the vocabulary (or
    // an earlier added token) already has keeps that id, anything else gets the next free id after the
    // model's vocabulary.
    int next_id = model.vocab_count();
    for (const auto& t : list) {
        const std::string where = "added_tokens";
        AddedToken a;
        a.content = string_field(t, "content", where);
        if (a.content.empty()) continue;  // HF ignores empty added tokens
        a.single_word = bool_field(t, "single_word", false, where);
        a.lstrip = bool_field(t, "lstrip", false, where);
        a.rstrip = bool_field(t, "rstrip", false, where);
        a.normalized = bool_field(t, "normalized", true, where);
        a.special = bool_field(t, "special", false, where);
        a.decode_form = a.content;
        if (a.normalized && normalizer) normalizer->normalize(a.decode_form);
        if (a.special) special_contents_.insert(a.content);
        const auto same = index_by_content_.find(a.content);
        if (same != index_by_content_.end()) {  // the same content again replaces the token in place
            AddedToken& old = tokens_[static_cast<size_t>(same->second)];
            a.id = old.id;
            old = std::move(a);
            continue;
        }
        const int model_id = model.token_to_id(a.content);
        a.id = model_id >= 0 ? model_id : next_id;
        next_id = std::max(next_id, a.id + 1);
        index_by_content_.emplace(a.content, static_cast<int>(tokens_.size()));
        index_by_id_[a.id] = tokens_.size();
        tokens_.push_back(std::move(a));
    }
    for (size_t k = 0; k < tokens_.size(); ++k) {
        const auto& a = tokens_[k];
        if (a.normalized) {
            normalized_->add(a.decode_form, static_cast<int>(k));
        } else {
            raw_->add(a.content, static_cast<int>(k));
        }
    }
}

AddedVocabulary::~AddedVocabulary() = default;

const AddedToken* AddedVocabulary::by_id(int id) const {
    const auto it = index_by_id_.find(id);
    return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
    const auto it = index_by_content_.find(content);
    return it == index_by_content_.end() ? nullptr : &tokens_[static_cast<size_t>(it->second)];
}

int AddedVocabulary::max_id() const {
    int m = -1;
    for (const auto& a : tokens_) m = std::max(m, a.id);
    return m;
}

std::vector<Segment> AddedVocabulary::split(const Segment& segment, const Matcher& matcher) const {
    const std::string_view s = segment.text;
    std::vector<Segment> out;
    auto emit = [&](size_t b, size_t e, int token_id) {
        if (b == e && token_id < 0) return;
        out.push_back({std::string(s.substr(b, e - b)), token_id, segment.at_input_start && b == 0});
    };
    size_t start_offset = 0;
    for (const auto& m : matcher.find(s)) {
        const AddedToken& a = tokens_[static_cast<size_t>(m.token)];
        size_t start = m.start, stop = m.end;
        if (a.single_word) {
            const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
            const bool stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
            if (!start_space || !stop_space) continue;
        }
        if (a.lstrip) start = std::max(trailing_space_start(s.substr(0, start)), start_offset);
        if (a.rstrip) stop += leading_space_length(s.substr(stop));
        if (start_offset < start) emit(start_offset, start, -1);
        emit(start, stop, a.id);
        start_offset = stop;
    }
    if (start_offset < s.size()) emit(start_offset, s.size(), -1);
    return out;
}

std::vector<Segment> AddedVocabulary::extract(std::string_view text, const Normalizer* normalizer) const {
    std::vector<Segment> result;
    if (text.empty()) return result;
    const Segment whole{std::string(text), -1, true};
    for (auto& seg : raw_->empty() ? std::vector<Segment>{whole} : split(whole, *raw_)) {
        if (seg.token_id >= 0) {
            result.push_back(std::move(seg));
            continue;
        }
        if (normalizer) normalizer->normalize(seg.text);
        if (seg.text.empty()) continue;
        if (normalized_->empty()) {
            result.push_back(std::move(seg));
            continue;
        }
        for (auto& piece : split(seg, *normalized_)) result.push_back(std::move(piece));
    }
    return result;
}

}  // namespace dsa::tok
