#pragma once
// Where the binary finds the files it ships with (attention presets in configs/) when no path is given.
#include <filesystem>
#include <vector>

namespace dsa {

// The directory of the running binary (/proc/self/exe); empty when it cannot be read.
std::filesystem::path executable_dir();

// Where `--attn NAME` presets are looked up, in order: configs/ one level above the binary's directory
// (a build directory in a checkout), beside the binary, ./configs, and the source tree's configs/ this
// binary was built from.
std::vector<std::filesystem::path> preset_search_dirs();

}  // namespace dsa
