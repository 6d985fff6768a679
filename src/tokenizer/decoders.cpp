#include "tokenizer/decoders.h"

#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/split.h"
#include "tokenizer/unicode.h"

namespace dsa::tok {

namespace {

class SequenceDecoder final : public Decoder {
public:
    explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (const auto& p : parts_) p->decode_chain(tokens);
    }

private:
    std::vector<std::unique_ptr<Decoder>> parts_;
};

// Maps the byte stand-in characters back to bytes. A token with any other character (an added token
// such as "<|eos|>" written with ordinary characters) contributes its own UTF-8 bytes. The bytes of
// all tokens are then read as UTF-8, invalid sequences becoming U+FFFD.
class ByteLevelDecoder final : public Decoder {
public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string bytes;
        for (const auto& t : tokens) {
            const size_t mark = bytes.size();
            bool all_mapped = true;
            for (size_t i = 0; i < t.size() && all_mapped;) {
                const int b = unicode::piece_char_to_byte(unicode::next_code_point(t, i));
                if (b < 0) {
                    all_mapped = false;
                } else {
                    bytes += static_cast<char>(b);
                }
            }
            if (!all_mapped) {
                bytes.resize(mark);
                bytes += t;
            }
        }
        tokens.assign(1, unicode::utf8_lossy(bytes));
    }
};

// Every replacement character becomes a space, except in the first token where (unless the scheme is
// "never") they are all dropped: that is HF's rule, not just the leading one.
class MetaspaceDecoder final : public Decoder {
public:
    MetaspaceDecoder(std::string replacement, PrependScheme scheme)
        : replacement_(std::move(replacement)), scheme_(scheme) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (size_t k = 0; k < tokens.size(); ++k) {
            const bool drop = k == 0 && scheme_ != PrependScheme::Never;
            std::string out;
            const std::string& t = tokens[k];
            for (size_t i = 0; i < t.size();) {
                if (t.compare(i, replacement_.size(), replacement_) == 0) {
                    if (!drop) out += ' ';
                    i += replacement_.size();
                } else {
                    out += t[i++];
                }
            }
            tokens[k] = std::move(out);
        }
    }

private:
    std::string replacement_;
    PrependScheme scheme_;
};

class ReplaceDecoder final : public Decoder {
public:
    ReplaceDecoder(Regex pattern, std::string content)
        : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) t = replace_all(t, pattern_, content_);
    }

private:
    Regex pattern_;
    std::string content_;
};

// "<0xXX>" tokens are collected into byte runs; a run that is valid UTF-8 becomes its text, otherwise
// each of its bytes becomes one U+FFFD. The two characters are parsed as Rust's u8::from_str_radix(16)
// does, which also takes a '+' sign ("<0x+F>" is byte 0x0F).
class ByteFallbackDecoder final : public Decoder {
public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string run;
        auto flush = [&] {
            if (run.empty()) return;
            if (unicode::find_invalid_utf8(run) == std::string::npos) {
                out.push_back(run);
            } else {
                for (size_t i = 0; i < run.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
            }
            run.clear();
        };
        for (auto& t : tokens) {
            const int b = parse_byte_token(t);
            if (b >= 0) {
                run += static_cast<char>(b);
                continue;
            }
            flush();
            out.push_back(std::move(t));
        }
        flush();
        tokens = std::move(out);
    }

private:
    static int hex_value(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    static int parse_byte_token(const std::string& t) {
        if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
        if (t[3] == '+') return hex_value(t[4]);
        const int hi = hex_value(t[3]), lo = hex_value(t[4]);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }
};

class FuseDecoder final : public Decoder {
public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
    }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder final : public Decoder {
public:
    StripDecoder(std::string content, size_t start, size_t stop)
        : content_(std::move(content)), start_(start), stop_(stop) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        const size_t n = content_.size();
        for (auto& t : tokens) {
            size_t begin = 0, end = t.size();
            for (size_t k = 0; k < start_ && end - begin >= n && t.compare(begin, n, content_) == 0; ++k)
                begin += n;
            for (size_t k = 0; k < stop_ && end - begin >= n && t.compare(end - n, n, content_) == 0; ++k)
                end -= n;
            t = t.substr(begin, end - begin);
        }
    }

private:
    std::string content_;
    size_t start_, stop_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& spec) {
    const std::string type = type_of(spec, "decoder");
    const std::string where = "decoder " + type;
    if (type == "Sequence") {
        std::vector<std::unique_ptr<Decoder>> parts;
        const json& list = field(spec, "decoders", where);
        if (!list.is_array()) throw Error("{}: field 'decoders' must be a list", where);
        for (const auto& p : list) parts.push_back(make_decoder(p));
        return std::make_unique<SequenceDecoder>(std::move(parts));
    }
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Metaspace")
        return std::make_unique<MetaspaceDecoder>(metaspace_replacement(spec, where),
                                                  parse_prepend_scheme(spec, where));
    if (type == "Replace")
        return std::make_unique<ReplaceDecoder>(pattern_field(spec, where),
                                                string_field(spec, "content", where));
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") {
        const std::string content = string_field(spec, "content", where);
        size_t i = 0;
        if (content.empty() || (unicode::next_code_point(content, i), i != content.size()))
            throw Error("{}: field 'content' must be a single character", where);
        const long long start = int_field(spec, "start", 0, where), stop = int_field(spec, "stop", 0, where);
        if (start < 0 || stop < 0) throw Error("{}: fields 'start' and 'stop' must be non-negative", where);
        return std::make_unique<StripDecoder>(content, static_cast<size_t>(start), static_cast<size_t>(stop));
    }
    throw Error(
        "unsupported decoder '{}' (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, "
        "Fuse, Strip)",
        type);
}

}  // namespace dsa::tok
