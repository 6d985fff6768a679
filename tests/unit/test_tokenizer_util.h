#pragma once
// Shared by the tokenizer tests: reading the golden files made by tools/make_tokenizer_golden.py and the
// tokenizers and book excerpts they refer to.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace dsa::test {

inline std::string read_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    EXPECT_TRUE(f.good()) << "cannot open " << p;
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// "shared:tokenizers/x.json" lives under ../shared/data, "source:models/..." in the repository.
inline std::filesystem::path resolve_data_path(const std::string& spec) {
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon), rel = spec.substr(colon + 1);
    return std::filesystem::path(kind == "shared" ? DSA_SHARED_DATA : DSA_SOURCE_DIR) / rel;
}

inline nlohmann::json read_golden(const std::string& name) {
    return nlohmann::json::parse(read_bytes(std::filesystem::path(DSA_TEST_DATA) / "tokenizer" / name));
}

// The text of a golden case: inline, or a byte range of a shared book.
inline std::string case_text(const nlohmann::json& c) {
    if (c.contains("text")) return c["text"].get<std::string>();
    const std::string book =
        read_bytes(std::filesystem::path(DSA_SHARED_DATA) / "texts" / c["book"].get<std::string>());
    return book.substr(c["offset"].get<size_t>(), c["length"].get<size_t>());
}

// A golden decode: a string, or {"prefix", "suffix"} around the case's text.
inline std::string expected_decode(const nlohmann::json& d, const std::string& text) {
    if (d.is_string()) return d.get<std::string>();
    return d["prefix"].get<std::string>() + text + d["suffix"].get<std::string>();
}

inline std::string short_label(const std::string& text) {
    std::string s = text.substr(0, 60);
    for (auto& c : s)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return s;
}

}  // namespace dsa::test
