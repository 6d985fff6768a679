#include <string_view>

#include "tokenizer/tokenizer.h"

namespace dsa {

namespace {

// Context ids decoded along with each new piece: enough for decoders whose output depends on the
// previous token (the SentencePiece leading-space rule), cheap to re-decode at every step.
constexpr size_t kContextIds = 5;

bool ends_with_replacement_char(std::string_view s) {
    return s.size() >= 3 && s.substr(s.size() - 3) == "\xEF\xBF\xBD";
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, std::span<const int> context)
    : tok_(tok), ids_(context.begin(), context.end()) {
    read_ = ids_.size();
    prefix_start_ = read_ > kContextIds ? read_ - kContextIds : 0;
}

// The text of ids_[prefix_start_, read_) is already out. Decode it again together with the new ids and
// emit the difference, unless the new text ends in U+FFFD: then a UTF-8 sequence is still incomplete
// (a byte-fallback run or a byte-level token split inside a character) and the ids wait for the next push.
std::string StreamDecoder::push(int id) {
    ids_.push_back(id);
    const std::span<const int> all(ids_);
    const std::string prefix = tok_.decode(all.subspan(prefix_start_, read_ - prefix_start_), true);
    const std::string text = tok_.decode(all.subspan(prefix_start_), true);
    if (text.size() <= prefix.size() || ends_with_replacement_char(text)) return {};
    prefix_start_ = read_;
    read_ = ids_.size();
    return text.substr(prefix.size());
}

std::string StreamDecoder::flush() {
    const std::span<const int> all(ids_);
    const std::string prefix = tok_.decode(all.subspan(prefix_start_, read_ - prefix_start_), true);
    const std::string text = tok_.decode(all.subspan(prefix_start_), true);
    prefix_start_ = read_;
    read_ = ids_.size();
    return text.size() > prefix.size() ? text.substr(prefix.size()) : std::string();
}

}  // namespace dsa
