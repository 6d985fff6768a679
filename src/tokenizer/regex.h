#pragma once
// Regular expressions for tokenizer.json patterns, run by PCRE2 (UTF + Unicode properties, JIT).
// HF `tokenizers` runs Split/Replace patterns with Oniguruma and a few built-in ones with Rust's `regex`
// crate; the shorthand classes differ between those engines and PCRE2, so patterns are rewritten to the
// exact sets the original engine uses (checked code point by code point against HF for \s \w \d):
//   Oniguruma \s = Rust \s = Unicode White_Space      -> [\t-\r\x{85}\p{Z}]
//   Oniguruma \w = Alphabetic, M, Nd, Pc, plus the Latin-1 digits ² ³ ¹ ¼ ½ ¾
//   Rust \w      = Alphabetic, M, Nd, Pc, Join_Control
//   Oniguruma \h = hex digit (PCRE2: horizontal space)
// Known residual differences: negated shorthands inside a bracket ([\S], [\W]) and \b keep PCRE2's
// meaning (they differ only for U+180E and the six Latin-1 digits), and characters assigned after
// Unicode 14 (PCRE2 10.42's tables) have no properties here.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsa::tok {

enum class RegexDialect { Oniguruma, RustRegex };

using ByteRange = std::pair<size_t, size_t>;  // [first, second) byte offsets

class Regex {
public:
    // Throws dsa::Error naming the pattern when PCRE2 rejects it.
    Regex(std::string_view pattern, RegexDialect dialect);
    Regex(Regex&& other) noexcept;
    Regex& operator=(Regex&&) = delete;
    Regex(const Regex&) = delete;
    ~Regex();

    // The successive non-overlapping matches in `text` (valid UTF-8), left to right, with the rules of
    // the Rust onig crate's find_iter: an empty match right where the previous match ended is skipped.
    std::vector<ByteRange> find_all(std::string_view text) const;

    // A pattern that matches `literal` exactly.
    static std::string escape(std::string_view literal);

private:
    void* code_;  // pcre2_code_8*
};

}  // namespace dsa::tok
