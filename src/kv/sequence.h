#pragma once
// A sequence's view of the paged KV cache: its block table (page ids, in token order) and its length.
// Token at position t lives in page pages[t / P] at slot t % P. Pages are owned by the cache's allocator.
#include <vector>

namespace dsa {

struct Sequence {
    std::vector<int> pages;  // block table
    int n_tokens = 0;        // tokens whose K/V are cached
};

}  // namespace dsa
