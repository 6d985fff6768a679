#include "eval/book_text.h"

#include <fstream>
#include <sstream>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dsa {

namespace {

// Position of "*** START OF THE PROJECT GUTENBERG" (also "THIS", also without the space after the
// stars), or npos. `what` is "START" or "END".
size_t find_marker(std::string_view text, std::string_view what) {
    size_t best = std::string_view::npos;
    for (std::string_view stars : {"*** ", "***"}) {
        for (std::string_view which : {"THE", "THIS"}) {
            const std::string marker =
                std::string(stars) + std::string(what) + " OF " + std::string(which) + " PROJECT GUTENBERG";
            const size_t at = text.find(marker);
            if (at < best) best = at;
        }
    }
    return best;
}

bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v';
}

}  // namespace

std::string clean_book_text(std::string_view raw) {
    std::string_view text = raw;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    const size_t start = find_marker(text, "START");
    if (start != std::string_view::npos) {
        const size_t eol = text.find('\n', start);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    }
    const size_t end = find_marker(text, "END");
    if (end != std::string_view::npos) text = text.substr(0, end);

    std::string out;
    out.reserve(text.size() + 1);
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
        out += text[i];
    }
    size_t b = 0, e = out.size();
    while (b < e && is_space(out[b])) ++b;
    while (e > b && is_space(out[e - 1])) --e;
    if (b == e) return {};
    return out.substr(b, e - b) + "\n";
}

std::string read_book_text(const std::filesystem::path& file, std::string_view flag) {
    if (!std::filesystem::is_regular_file(file)) throw Error("{} {}: no such file", flag, file.string());
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) throw Error("{} {}: cannot read the file", flag, file.string());
    const std::string raw = ss.str();
    const size_t bad = unicode::find_invalid_utf8(raw);
    if (bad != std::string::npos) {
        throw Error("{} {}: not valid UTF-8 (invalid or truncated sequence at byte offset {})", flag,
                    file.string(), bad);
    }
    std::string text = clean_book_text(raw);
    if (text.empty()) throw Error("{} {}: the file holds no text", flag, file.string());
    return text;
}

}  // namespace dsa
