#include "tokenizer/normalizers.h"

#include <vector>

#include "tokenizer/split.h"
#include "tokenizer/unicode.h"

namespace dsa::tok {

namespace {

class SequenceNormalizer final : public Normalizer {
public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
    void normalize(std::string& text) const override {
        for (const auto& p : parts_) p->normalize(text);
    }

private:
    std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer final : public Normalizer {
public:
    explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
    void normalize(std::string& text) const override {
        if (!text.empty()) text.insert(0, prefix_);  // HF prepends nothing to an empty string
    }

private:
    std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
public:
    ReplaceNormalizer(Regex pattern, std::string content)
        : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void normalize(std::string& text) const override { text = replace_all(text, pattern_, content_); }

private:
    Regex pattern_;
    std::string content_;
};

class UnicodeNormalizer final : public Normalizer {
public:
    explicit UnicodeNormalizer(unicode::NormalizationForm form) : form_(form) {}
    void normalize(std::string& text) const override { text = unicode::normalize(text, form_); }

private:
    unicode::NormalizationForm form_;
};

class LowercaseNormalizer final : public Normalizer {
public:
    void normalize(std::string& text) const override {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();)
            unicode::append_lowercase(out, unicode::next_code_point(text, i));
        text = std::move(out);
    }
};

class StripNormalizer final : public Normalizer {
public:
    StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
    void normalize(std::string& text) const override {
        size_t begin = 0, end = text.size();
        if (left_) {
            while (begin < end) {
                size_t next = begin;
                if (!unicode::is_whitespace(unicode::next_code_point(text, next))) break;
                begin = next;
            }
        }
        if (right_) {
            while (end > begin) {
                size_t start = end - 1;
                while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
                size_t next = start;
                if (!unicode::is_whitespace(unicode::next_code_point(text, next))) break;
                end = start;
            }
        }
        text = text.substr(begin, end - begin);
    }

private:
    bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& spec) {
    const std::string type = type_of(spec, "normalizer");
    const std::string where = "normalizer " + type;
    if (type == "Sequence") {
        std::vector<std::unique_ptr<Normalizer>> parts;
        const json& list = field(spec, "normalizers", where);
        if (!list.is_array()) throw Error("{}: field 'normalizers' must be a list", where);
        for (const auto& p : list) parts.push_back(make_normalizer(p));
        return std::make_unique<SequenceNormalizer>(std::move(parts));
    }
    if (type == "Prepend") return std::make_unique<PrependNormalizer>(string_field(spec, "prepend", where));
    if (type == "Replace")
        return std::make_unique<ReplaceNormalizer>(pattern_field(spec, where),
                                                   string_field(spec, "content", where));
    if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalizationForm::NFC);
    if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalizationForm::NFD);
    if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalizationForm::NFKC);
    if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalizationForm::NFKD);
    if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
    if (type == "Strip")
        return std::make_unique<StripNormalizer>(bool_field(spec, "strip_left", true, where),
                                                 bool_field(spec, "strip_right", true, where));
    throw Error(
        "unsupported normalizer '{}' (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, "
        "Lowercase, Strip)",
        type);
}

}  // namespace dsa::tok
