#include "util/paths.h"

#include <unistd.h>

#include <array>
#include <string>

namespace dsa {

namespace fs = std::filesystem;

fs::path executable_dir() {
    std::array<char, 4096> buf{};
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) return {};
    return fs::path(std::string(buf.data(), static_cast<size_t>(n))).parent_path();
}

std::vector<fs::path> preset_search_dirs() {
    std::vector<fs::path> dirs;
    const fs::path exe = executable_dir();
    if (!exe.empty()) {
        dirs.push_back(exe.parent_path() / "configs");  // CHECKOUT/build/dsa -> CHECKOUT/configs
        dirs.push_back(exe / "configs");
    }
    dirs.push_back(fs::current_path() / "configs");
    dirs.push_back(fs::path(DSA_SOURCE_ROOT) / "configs");
    return dirs;
}

}  // namespace dsa
