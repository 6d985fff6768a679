#pragma once
// Comma-separated list flags of the eval commands (--ctx 1024,4096 --depth 0,0.5,1 --budget 512,1024),
// parsed here rather than by CLI11 so that every bad value gives one `dsa: error:` line naming the flag.
#include <string>
#include <string_view>
#include <vector>

namespace dsa {

// "a,b,c" -> {"a", "b", "c"}, each trimmed of spaces. Empty items ("a,,b", "", "a,") are an error naming
// `flag`.
std::vector<std::string> split_list(std::string_view list, std::string_view flag);

// Integers >= `min_value`, e.g. parse_int_list("1024,4096", "--ctx", 1).
std::vector<int> parse_int_list(std::string_view list, std::string_view flag, int min_value);

// Numbers in [lo, hi], e.g. parse_real_list("0,0.5,1", "--depth", 0.0, 1.0).
std::vector<double> parse_real_list(std::string_view list, std::string_view flag, double lo, double hi);

}  // namespace dsa
