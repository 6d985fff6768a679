#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>
#include <memory>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dsa::tok {

namespace {

constexpr std::string_view kWhiteSpaceSet = "\\t-\\r\\x{85}\\p{Z}";
constexpr std::string_view kOnigWordSet =
    "\\p{Alpha}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr std::string_view kRustWordSet = "\\p{Alpha}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
constexpr std::string_view kHexDigitSet = "0-9a-fA-F";

// Rewrites the shorthand classes whose meaning differs between the source engine and PCRE2 (see regex.h).
std::string translate(std::string_view p, RegexDialect dialect) {
    std::string out;
    out.reserve(p.size() + 32);
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            const char e = p[++i];
            std::string_view set;
            bool negated = false;
            switch (e) {
                case 's':
                case 'S':
                    set = kWhiteSpaceSet, negated = e == 'S';
                    break;
                case 'w':
                case 'W':
                    set = dialect == RegexDialect::Oniguruma ? kOnigWordSet : kRustWordSet,
                    negated = e == 'W';
                    break;
                case 'h':
                case 'H':
                    if (dialect == RegexDialect::Oniguruma) set = kHexDigitSet, negated = e == 'H';
                    break;
                default:
                    break;
            }
            if (set.empty() || (in_class && negated)) {
                out += '\\';
                out += e;
            } else if (in_class) {
                out += set;
            } else {
                out += negated ? "[^" : "[";
                out += set;
                out += ']';
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal member, not the end of the class.
            if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
            if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
            continue;
        }
        if (in_class && c == '[') {
            if (i + 1 < p.size() && p[i + 1] == ':') {  // POSIX class such as [:alpha:]
                const size_t end = p.find(":]", i + 2);
                if (end != std::string_view::npos) {
                    out += p.substr(i, end + 2 - i);
                    i = end + 1;
                    continue;
                }
            }
            throw Error("nested character classes are not supported in pattern '{}'", p);
        }
        if (in_class && c == '&' && i + 1 < p.size() && p[i + 1] == '&') {
            throw Error("character class intersection (&&) is not supported in pattern '{}'", p);
        }
        if (in_class && c == ']') in_class = false;
        out += c;
    }
    return out;
}

// Long runs of one character class can need more backtracking memory than PCRE2's default 32 KiB JIT
// stack; one growable stack per thread avoids allocating per match.
struct JitContext {
    pcre2_match_context* context = nullptr;
    pcre2_jit_stack* stack = nullptr;
    JitContext() {
        context = pcre2_match_context_create(nullptr);
        stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
        pcre2_jit_stack_assign(context, nullptr, stack);
    }
    ~JitContext() {
        pcre2_jit_stack_free(stack);
        pcre2_match_context_free(context);
    }
};

pcre2_code* as_code(void* p) {
    return static_cast<pcre2_code*>(p);
}

}  // namespace

Regex::Regex(std::string_view pattern, RegexDialect dialect) {
    const std::string translated = translate(pattern, dialect);
    pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    uint32_t options = PCRE2_UTF | PCRE2_UCP;
    // Oniguruma's Ruby syntax makes ^ and $ line anchors; Rust's regex makes them text anchors.
    if (dialect == RegexDialect::Oniguruma) options |= PCRE2_MULTILINE;
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                     options, &error, &offset, cc);
    pcre2_compile_context_free(cc);
    if (!code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof(message));
        throw Error("invalid regex '{}': {} at offset {}", pattern, reinterpret_cast<const char*>(message),
                    offset);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where JIT is unavailable
    code_ = code;
}

Regex::Regex(Regex&& other) noexcept : code_(other.code_) {
    other.code_ = nullptr;
}

Regex::~Regex() {
    if (code_) pcre2_code_free(as_code(code_));
}

std::vector<ByteRange> Regex::find_all(std::string_view text) const {
    thread_local JitContext jit;
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(as_code(code_), nullptr), &pcre2_match_data_free);
    std::vector<ByteRange> matches;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t search_from = 0;
    bool have_last = false;
    size_t last_match_end = 0;
    while (search_from <= text.size()) {
        // The text was validated once up front; PCRE2's own check would rescan it at every call.
        const int rc = pcre2_match(as_code(code_), subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                                   md.get(), jit.context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof(message));
            throw Error("regex match failed: {}", reinterpret_cast<const char*>(message));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t s = ov[0], e = ov[1];
        if (s == e && have_last && last_match_end == e) {
            search_from += search_from < text.size()
                               ? unicode::sequence_length(static_cast<unsigned char>(text[search_from]))
                               : 1;
            continue;
        }
        search_from = e;
        have_last = true;
        last_match_end = e;
        matches.emplace_back(s, e);
    }
    return matches;
}

std::string Regex::escape(std::string_view literal) {
    std::string out;
    out.reserve(literal.size() * 2);
    for (const char c : literal) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && !std::isalnum(u) && u != '_' && u >= 0x20) out += '\\';
        out += c;
    }
    return out;
}

}  // namespace dsa::tok
