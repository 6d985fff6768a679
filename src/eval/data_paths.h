#pragma once
// Where the eval commands find the held-out book of the shared data when no path is given, relative to the
// working directory and to the binary's checkout. Presets: util/paths.h.
#include <filesystem>
#include <vector>

#include "util/paths.h"

namespace dsa {

// ../shared/data/texts/pride-and-prejudice.txt (held out of the bundled model's training corpus), from
// $DSA_SHARED_DATA when set, else from the working directory or from the checkout that holds the binary. Throws dsa::Error naming --text when
// neither exists.
std::filesystem::path default_eval_book();

}  // namespace dsa
