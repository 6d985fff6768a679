#pragma once
// One error type for every bad-input condition. The CLI catches it at the top, prints the message as
// one line on stderr ("dsa: error: <what>") and exits non-zero; nothing below main() prints errors.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace dsa {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
    template <typename... Args>
    explicit Error(fmt::format_string<Args...> f, Args&&... args)
        : std::runtime_error(fmt::format(f, std::forward<Args>(args)...)) {}
};

}  // namespace dsa
