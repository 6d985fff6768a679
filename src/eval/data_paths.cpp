#include "eval/data_paths.h"

#include <cstdlib>

#include "util/error.h"

namespace dsa {

namespace fs = std::filesystem;

namespace {

constexpr const char* kHeldOutBook = "pride-and-prejudice.txt";

}  // namespace

fs::path default_eval_book() {
    const fs::path rel = fs::path("shared") / "data" / "texts" / kHeldOutBook;
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("DSA_SHARED_DATA"); env && *env)
        candidates.push_back(fs::path(env) / "texts" / kHeldOutBook);
    candidates.push_back(fs::current_path().parent_path() / rel);
    const fs::path exe = executable_dir();
    if (!exe.empty()) {
        candidates.push_back(exe.parent_path().parent_path() / rel);  // CHECKOUT/build-x/dsa
        candidates.push_back(exe.parent_path() / rel);
    }
    candidates.push_back(fs::path(DSA_SOURCE_ROOT).parent_path() / rel);  // the checkout it was built from
    for (const fs::path& p : candidates)
        if (fs::is_regular_file(p)) return p.lexically_normal();
    throw Error(
        "--text: the default filler book ../shared/data/texts/{} was not found (or set DSA_SHARED_DATA to "
        "the "
        "shared data folder); give --text FILE",
        kHeldOutBook);
}

}  // namespace dsa
