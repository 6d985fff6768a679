#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

#include "util/error.h"

namespace dsa::unicode {

namespace {

// Length of the valid UTF-8 prefix of the sequence at s[i] (the "maximal subpart" of Unicode ch. 3),
// and whether it is a complete character. Shared by validation and lossy decoding.
struct SequenceCheck {
    size_t length;
    bool complete;
};

SequenceCheck check_sequence(std::string_view s, size_t i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) return {1, true};
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b == 0xE0) {
        need = 2, lo = 0xA0;  // no overlong 3-byte forms
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
        need = 2;
    } else if (b == 0xED) {
        need = 2, hi = 0x9F;  // no surrogates
    } else if (b == 0xF0) {
        need = 3, lo = 0x90;  // no overlong 4-byte forms
    } else if (b >= 0xF1 && b <= 0xF3) {
        need = 3;
    } else if (b == 0xF4) {
        need = 3, hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {1, false};
    }
    size_t j = i + 1;
    for (int k = 0; k < need; ++k, ++j) {
        if (j >= s.size()) return {j - i, false};
        const auto c = static_cast<unsigned char>(s[j]);
        if (c < (k == 0 ? lo : 0x80) || c > (k == 0 ? hi : 0xBF)) return {j - i, false};
    }
    return {j - i, true};
}

struct ByteMap {
    std::array<std::string, 256> piece;
    std::array<int, 512> byte_of;  // every stand-in character is below U+0200
};

const ByteMap& byte_map() {
    static const ByteMap map = [] {
        ByteMap m;
        m.byte_of.fill(-1);
        // Printable Latin-1 bytes stand for themselves; the other 68 bytes get U+0100, U+0101, ... in order.
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable =
                (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const int cp = printable ? b : next++;
            append_utf8(m.piece[b], static_cast<char32_t>(cp));
            m.byte_of[cp] = b;
        }
        return m;
    }();
    return map;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const auto c = check_sequence(s, i);
        if (!c.complete) return i;
        i += c.length;
    }
    return std::string_view::npos;
}

char32_t next_code_point(std::string_view s, size_t& i) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = sequence_length(b);
    char32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += n;
    return cp;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string utf8_lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        const auto c = check_sequence(bytes, i);
        if (c.complete) {
            out.append(bytes.substr(i, c.length));
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD
        }
        i += c.length;
    }
    return out;
}

bool is_whitespace(char32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

bool is_numeric(char32_t cp) {
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_punctuation(char32_t cp) {
    if (cp < 0x80)  // Rust's is_ascii_punctuation, which includes symbols such as $ + < = > ^ ` | ~
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
               (cp >= 0x7B && cp <= 0x7E);
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            return true;
        default:
            return false;
    }
}

void append_lowercase(std::string& out, char32_t cp) {
    // SpecialCasing.txt's only unconditional multi-character lowercase mapping; utf8proc has the simple one.
    if (cp == 0x130) {
        out += "i\xCC\x87";  // U+0069 U+0307
        return;
    }
    append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
}

std::string normalize(std::string_view s, NormalizationForm form) {
    int options = UTF8PROC_STABLE;
    switch (form) {
        case NormalizationForm::NFC:
            options |= UTF8PROC_COMPOSE;
            break;
        case NormalizationForm::NFD:
            options |= UTF8PROC_DECOMPOSE;
            break;
        case NormalizationForm::NFKC:
            options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
            break;
        case NormalizationForm::NFKD:
            options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
            break;
    }
    utf8proc_uint8_t* result = nullptr;
    // An explicit length (not UTF8PROC_NULLTERM) keeps U+0000 characters inside the text.
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                static_cast<utf8proc_ssize_t>(s.size()), &result,
                                static_cast<utf8proc_option_t>(options));
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
    if (n < 0) throw Error("Unicode normalization failed: {}", utf8proc_errmsg(n));
    return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
}

std::string_view byte_to_piece(uint8_t b) {
    return byte_map().piece[b];
}

int piece_char_to_byte(char32_t cp) {
    return cp < 512 ? byte_map().byte_of[cp] : -1;
}

}  // namespace dsa::unicode
