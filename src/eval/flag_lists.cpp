#include "eval/flag_lists.h"

#include <charconv>
#include <cmath>

#include "util/error.h"

namespace dsa {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
}

}  // namespace

std::vector<std::string> split_list(std::string_view list, std::string_view flag) {
    std::vector<std::string> items;
    size_t begin = 0;
    while (true) {
        const size_t comma = list.find(',', begin);
        const std::string_view item = trim(
            list.substr(begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin));
        if (item.empty())
            throw Error("{} '{}': expected a comma-separated list without empty items", flag, list);
        items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        begin = comma + 1;
    }
    return items;
}

std::vector<int> parse_int_list(std::string_view list, std::string_view flag, int min_value) {
    std::vector<int> out;
    for (const std::string& item : split_list(list, flag)) {
        int v = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (ec != std::errc() || end != item.data() + item.size()) {
            throw Error("{} '{}': '{}' is not an integer", flag, list, item);
        }
        if (v < min_value) throw Error("{} '{}': {} is below the minimum {}", flag, list, v, min_value);
        out.push_back(v);
    }
    return out;
}

std::vector<double> parse_real_list(std::string_view list, std::string_view flag, double lo, double hi) {
    std::vector<double> out;
    for (const std::string& item : split_list(list, flag)) {
        double v = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (ec != std::errc() || end != item.data() + item.size() || !std::isfinite(v)) {
            throw Error("{} '{}': '{}' is not a number", flag, list, item);
        }
        if (v < lo || v > hi) throw Error("{} '{}': {} is outside [{}, {}]", flag, list, item, lo, hi);
        out.push_back(v);
    }
    return out;
}

}  // namespace dsa
