// The Unicode helpers under the tokenizer, against independent references: utf8proc's decoder for
// UTF-8 validity (every 1-3 byte sequence), Python's bytes.decode('utf-8', 'replace') for lossy decoding
// (the maximal-subpart rule Rust's from_utf8_lossy also follows), and the White_Space list for \s.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <set>
#include <string>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace {

namespace u = dsa::unicode;

// utf8proc's verdict: does `s` decode completely into valid scalar values?
bool utf8proc_valid(const std::string& s) {
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
    while (left > 0) {
        utf8proc_int32_t cp;
        const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
        if (n <= 0 || cp < 0) return false;
        p += n;
        left -= n;
    }
    return true;
}

TEST(TokenizerUnicode, ValidityMatchesUtf8procForAllShortSequences) {
    int checked = 0;
    for (int a = 0; a < 256; ++a) {
        const std::string s1{static_cast<char>(a)};
        ASSERT_EQ(u::find_invalid_utf8(s1) == std::string::npos, utf8proc_valid(s1)) << a;
        for (int b = 0; b < 256; ++b) {
            const std::string s2 = s1 + static_cast<char>(b);
            ASSERT_EQ(u::find_invalid_utf8(s2) == std::string::npos, utf8proc_valid(s2)) << a << " " << b;
            if (a < 0xE0 || a > 0xF4) continue;  // three bytes: only lead bytes of 3/4-byte sequences matter
            for (int c = 0; c < 256; ++c) {
                const std::string s3 = s2 + static_cast<char>(c);
                ASSERT_EQ(u::find_invalid_utf8(s3) == std::string::npos, utf8proc_valid(s3))
                    << a << " " << b << " " << c;
                ++checked;
            }
        }
    }
    for (int a = 0xF0; a <= 0xF4; ++a)
        for (int b = 0x80; b <= 0xBF; ++b)
            for (const int c : {0x7F, 0x80, 0xBF, 0xC0})
                for (const int d : {0x7F, 0x80, 0x9A, 0xBF, 0xC0}) {
                    const std::string s{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                                        static_cast<char>(d)};
                    ASSERT_EQ(u::find_invalid_utf8(s) == std::string::npos, utf8proc_valid(s));
                }
    EXPECT_GT(checked, 1'000'000);
}

TEST(TokenizerUnicode, FirstInvalidOffset) {
    EXPECT_EQ(u::find_invalid_utf8("h\xC3\xA9llo"), std::string::npos);
    EXPECT_EQ(u::find_invalid_utf8("h\xC3\xA9llo\xC3"), 6u);
    EXPECT_EQ(u::find_invalid_utf8("\xE2\x82\xAC\xE2\x28\xA1"), 3u);
}

TEST(TokenizerUnicode, LossyDecodingMatchesPython) {
    const std::string fffd = "\xEF\xBF\xBD";
    const std::pair<std::string, std::string> cases[] = {
        {"\xE2\x82"
         "a",
         fffd + "a"},
        {"\xF0\x9F\x98", fffd},
        {"\xED\xA0\x80", fffd + fffd + fffd},
        {"\xC0\x80", fffd + fffd},
        {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},
        {"\xE0\x80\x80", fffd + fffd + fffd},
        {"\xFF\xFE", fffd + fffd},
        {"a\x80\x80"
         "b",
         "a" + fffd + fffd + "b"},
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
        {"\xE2\x82\xAC\xE2", "\xE2\x82\xAC" + fffd},
    };
    for (const auto& [in, out] : cases) EXPECT_EQ(u::utf8_lossy(in), out);
}

TEST(TokenizerUnicode, ByteLevelMapIsABijectionOntoPrintableCharacters) {
    std::set<std::string> pieces;
    for (int b = 0; b < 256; ++b) {
        const std::string_view p = u::byte_to_piece(static_cast<uint8_t>(b));
        pieces.emplace(p);
        size_t i = 0;
        EXPECT_EQ(u::piece_char_to_byte(u::next_code_point(p, i)), b);
    }
    EXPECT_EQ(pieces.size(), 256u);
    EXPECT_EQ(u::byte_to_piece(' '), "\xC4\xA0");   // U+0120 'Ġ'
    EXPECT_EQ(u::byte_to_piece('\n'), "\xC4\x8A");  // U+010A 'Ċ'
    EXPECT_EQ(u::byte_to_piece('a'), "a");
    EXPECT_EQ(u::piece_char_to_byte(U' '), -1);
}

// \s in an Oniguruma pattern must match exactly Unicode White_Space (PCRE2's own \s adds U+180E).
TEST(TokenizerUnicode, RegexWhitespaceIsUnicodeWhiteSpace) {
    std::string all;
    std::vector<char32_t> at;  // code point at each byte offset that starts one
    for (char32_t cp = 1; cp < 0x30000; ++cp) {
        if (cp >= 0xD800 && cp < 0xE000) continue;
        at.resize(all.size() + 1);
        at[all.size()] = cp;
        u::append_utf8(all, cp);
    }
    std::set<char32_t> matched;
    for (const auto& [b, e] : dsa::tok::Regex(R"(\s)", dsa::tok::RegexDialect::Oniguruma).find_all(all))
        matched.insert(at[b]);
    std::set<char32_t> expected;
    for (char32_t cp = 1; cp < 0x30000; ++cp)
        if (u::is_whitespace(cp)) expected.insert(cp);
    EXPECT_EQ(matched, expected);
    EXPECT_EQ(expected.size(), 25u);  // White_Space has 25 code points
}

TEST(TokenizerUnicode, RegexWordClassesPerDialect) {
    using dsa::tok::Regex;
    using dsa::tok::RegexDialect;
    const Regex onig(R"(\w+)", RegexDialect::Oniguruma), rust(R"(\w+)", RegexDialect::RustRegex);
    // Oniguruma counts the Latin-1 superscript digits and fractions as word characters; Rust does not.
    EXPECT_EQ(onig.find_all("x\xC2\xB2"), (std::vector<dsa::tok::ByteRange>{{0, 3}}));
    EXPECT_EQ(rust.find_all("x\xC2\xB2"), (std::vector<dsa::tok::ByteRange>{{0, 1}}));
    // Rust counts the zero-width joiner (Join_Control) as a word character; Oniguruma does not.
    EXPECT_EQ(rust.find_all("a\xE2\x80\x8D"
                            "b"),
              (std::vector<dsa::tok::ByteRange>{{0, 5}}));
    EXPECT_EQ(onig.find_all("a\xE2\x80\x8D"
                            "b")
                  .size(),
              2u);
    // \h is a hex digit in Oniguruma.
    EXPECT_EQ(Regex(R"(\h+)", RegexDialect::Oniguruma).find_all("zz0aF9g"),
              (std::vector<dsa::tok::ByteRange>{{2, 6}}));
}

TEST(TokenizerUnicode, RegexEmptyMatchesFollowTheOnigIterator) {
    using dsa::tok::Regex;
    // An empty match right where the previous match ended is skipped; one elsewhere is reported.
    EXPECT_EQ(Regex("a*", dsa::tok::RegexDialect::Oniguruma).find_all("baaa"),
              (std::vector<dsa::tok::ByteRange>{{0, 0}, {1, 4}}));
    EXPECT_EQ(Regex("x*", dsa::tok::RegexDialect::Oniguruma)
                  .find_all("\xC3\xA9"
                            "x"),
              (std::vector<dsa::tok::ByteRange>{{0, 0}, {2, 3}}));
}

}  // namespace
