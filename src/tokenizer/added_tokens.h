#pragma once
// tokenizer.json "added_tokens": split out of the text before the model, as HF's AddedVocabulary does.
// Tokens with normalized=false are matched in the raw text first; every remaining piece is then
// normalized and searched for the normalized=true tokens (whose patterns are themselves normalized).
// Matching is leftmost-longest; single_word, lstrip and rstrip refine each match.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizers.h"

namespace dsa::tok {

struct AddedToken {
    int id = -1;
    std::string content;
    bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
    // The string decode passes to the decoder for this id: the normalized content for a normalized
    // token whose normalization changes it (HF 0.23 behaviour), the content otherwise.
    std::string decode_form;
};

// A piece of the input after added-token extraction: either text for the pre-tokenizer and model, or
// one added token's id.
struct Segment {
    std::string text;
    int token_id = -1;            // >= 0: an added token
    bool at_input_start = false;  // begins at byte 0 of the original input
};

class AddedVocabulary {
public:
    // `list` is the added_tokens JSON array (may be null); `normalizer` may be null.
    AddedVocabulary(const json& list, const BpeModel& model, const Normalizer* normalizer);
    ~AddedVocabulary();

    // Splits valid UTF-8 `text` into segments, normalizing the text pieces; empty text pieces are dropped.
    std::vector<Segment> extract(std::string_view text, const Normalizer* normalizer) const;

    const AddedToken* by_id(int id) const;
    const AddedToken* by_content(std::string_view content) const;
    // Whether `token` (a decode-form string) is the content of a special token; HF decode's skip test.
    bool is_special_content(std::string_view token) const {
        return special_contents_.find(token) != special_contents_.end();
    }
    int max_id() const;

private:
    struct Matcher;
    std::vector<Segment> split(const Segment& segment, const Matcher& matcher) const;

    std::vector<AddedToken> tokens_;
    std::unordered_map<int, size_t> index_by_id_;  // id -> index into tokens_; decode looks up every id
    TokenMap index_by_content_;                    // content -> index into tokens_
    std::unordered_set<std::string, StringHash, std::equal_to<>> special_contents_;
    std::unique_ptr<Matcher> raw_, normalized_;
};

}  // namespace dsa::tok
