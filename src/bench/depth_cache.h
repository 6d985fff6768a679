#pragma once
// One sequence whose cache bench moves to a given depth before every repetition, cheaply and exactly as
// a fresh sequence prefilled to that depth would hold it. Every token comes from one fixed stream of random
// ids (ids[t] at position t). Going up prefills the missing ids in chunks (the same work a user's prompt
// costs). Going down keeps the longest page-aligned prefix that this class prefilled and re-prefills the
// rest: tokens the tests decoded are never kept, since decode steps attend through the policy and a
// prompt does not. Truncating at a page boundary is exact: forward() continues from seq.n_tokens over the
// block table it already holds, attention reads positions < n_tokens only, and an append at slot 0 of a
// page resets the page's metadata (paged_cache.h, kernels/kv_metadata.h), so no stale key reaches a
// selection. No fill is a single token (that forward() would be a decode step).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace dsa {

// n ids uniform in [0, vocab), the same for the same seed.
std::vector<int> random_token_ids(int n, int vocab, uint64_t seed);

class DepthCache {
public:
    // ids: [capacity] the token stream; page_size: the backend's P; chunk: prefill tokens per forward()
    // (0: the backend's, prefill_batch).
    DepthCache(Backend& backend, std::span<const int> ids, int page_size, int chunk);
    ~DepthCache();  // releases the sequence's pages
    DepthCache(const DepthCache&) = delete;
    DepthCache& operator=(const DepthCache&) = delete;

    // Brings the cache to exactly `depth` tokens. Returns the tokens prefilled and their time.
    struct Fill {
        int tokens = 0;
        double ms = 0;
    };
    Fill set_depth(int depth);

    Sequence& seq() { return seq_; }
    std::span<const int> ids() const { return ids_; }
    std::span<float> logits() { return logits_; }  // [vocab] scratch for forward()

private:
    Backend& backend_;
    std::span<const int> ids_;
    int page_size_;
    int chunk_;
    Sequence seq_;
    int prefilled_ = 0;  // positions [0, prefilled_) hold what set_depth() prefilled
    std::vector<float> logits_;
};

}  // namespace dsa
