#include "bench/depth_cache.h"

#include <algorithm>
#include <random>

#include "engine/generator.h"
#include "util/error.h"
#include "util/timer.h"

namespace dsa {

std::vector<int> random_token_ids(int n, int vocab, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::uniform_int_distribution<int> dist(0, vocab - 1);
    std::vector<int> ids(static_cast<size_t>(n));
    for (int& id : ids) id = dist(gen);
    return ids;
}

DepthCache::DepthCache(Backend& backend, std::span<const int> ids, int page_size, int chunk)
    : backend_(backend),
      ids_(ids),
      page_size_(page_size),
      chunk_(chunk),
      logits_(static_cast<size_t>(backend.model().config.vocab_size)) {}

DepthCache::~DepthCache() {
    backend_.release(seq_);
}

DepthCache::Fill DepthCache::set_depth(int depth) {
    if (depth < 0 || depth > static_cast<int>(ids_.size())) {
        throw Error("bench: depth {} is outside the token stream of {} ids", depth, ids_.size());
    }
    // Only what this class prefilled is kept: the tests' decode steps attend through the policy, so their
    // tokens' K/V (past the dense layers) differ from a prompt's. A cut is at a page boundary.
    int keep = std::min({seq_.n_tokens, prefilled_, depth});
    if (keep < seq_.n_tokens) keep -= keep % page_size_;
    // A 1-token forward() is a decode step, not a prefill chunk: fill at least 2 tokens.
    if (depth - keep == 1 && keep > 0) keep = (keep - 1) / page_size_ * page_size_;
    seq_.n_tokens = keep;
    prefilled_ = depth;
    Fill fill;
    fill.tokens = depth - keep;
    if (fill.tokens == 0) return fill;
    const double t0 = now_ms();
    prefill(backend_, seq_, ids_.subspan(static_cast<size_t>(keep), static_cast<size_t>(fill.tokens)), chunk_,
            logits_, false);
    fill.ms = now_ms() - t0;
    return fill;
}

}  // namespace dsa
