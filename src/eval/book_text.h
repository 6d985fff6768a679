#pragma once
// Long texts as evaluation input (passkey filler, perplexity): a Project Gutenberg book is reduced to its
// body, the way tools/prepare_corpus.py prepares the training books, so eval text and training text look
// alike (LF line ends, no licence boilerplate).
#include <filesystem>
#include <string>
#include <string_view>

namespace dsa {

// The text between the "*** START OF THE/THIS PROJECT GUTENBERG ...***" line and the "*** END OF ..."
// marker (each only when present), CRLF turned into LF, a leading UTF-8 BOM dropped, surrounding
// whitespace trimmed, one final "\n". A text without markers is kept whole (only normalized).
std::string clean_book_text(std::string_view raw);

// Reads `file` and cleans it. Errors (dsa::Error) name `flag`: missing or unreadable file, invalid UTF-8,
// nothing left after cleaning.
std::string read_book_text(const std::filesystem::path& file, std::string_view flag);

}  // namespace dsa
