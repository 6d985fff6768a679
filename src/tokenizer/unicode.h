#pragma once
// UTF-8 and Unicode character helpers with the semantics HF `tokenizers` (Rust) uses: Rust's
// char::is_whitespace / is_numeric, Rust's String::from_utf8_lossy, char::to_lowercase, and the GPT-2
// byte <-> printable-character map of the ByteLevel components. General categories and normalization
// forms come from utf8proc.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsa::unicode {

// Byte offset of the first byte that breaks UTF-8 validity (overlong forms, surrogates, > U+10FFFF and
// truncated sequences are invalid, as in Rust's str), or npos when `s` is valid UTF-8.
size_t find_invalid_utf8(std::string_view s);

// Decodes the code point starting at s[i] (s must be valid UTF-8) and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
// Length in bytes of the UTF-8 sequence that starts with lead byte `b` (1 for ASCII).
inline size_t sequence_length(unsigned char b) {
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}
void append_utf8(std::string& out, char32_t cp);

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Unicode White_Space (Rust char::is_whitespace).
bool is_whitespace(char32_t cp);
// General category N* (Rust char::is_numeric).
bool is_numeric(char32_t cp);
// HF Punctuation pre-tokenizer: ASCII punctuation or general category P*.
bool is_punctuation(char32_t cp);
// Rust char::to_lowercase (full mapping: U+0130 becomes two code points) appended to `out`.
void append_lowercase(std::string& out, char32_t cp);

enum class NormalizationForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalizationForm form);

// GPT-2 ByteLevel map: every byte has a printable stand-in character (e.g. ' ' -> 'Ġ' U+0120).
std::string_view byte_to_piece(uint8_t b);  // the stand-in, as UTF-8
int piece_char_to_byte(char32_t cp);        // inverse; -1 for a character that stands for no byte

}  // namespace dsa::unicode
