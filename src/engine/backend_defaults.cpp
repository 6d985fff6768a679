// Default implementations of the optional Backend operations (a clear error naming the backend), and the
// argument checks the backends share.
#include <algorithm>
#include <vector>

#include "engine/backend.h"
#include "util/error.h"

namespace dsa {

void Backend::set_attention(const AttentionPolicy& policy, bool collect_recall) {
    throw Error("the {} backend cannot change its attention policy", name());
}

void Backend::copy_sequence(const Sequence& src, Sequence& dst) {
    throw Error("the {} backend cannot copy sequences", name());
}

void Backend::forward_batch(std::span<Sequence* const>, std::span<const int>, std::span<float>) {
    throw Error("the {} backend cannot decode several sequences in one step", name());
}

void check_batch(const ModelConfig& cfg, int max_batch, std::span<Sequence* const> seqs,
                 std::span<const int> tokens, std::span<const float> logits) {
    const size_t B = seqs.size();
    if (B == 0) throw Error("forward_batch: no sequences given");
    if (B > static_cast<size_t>(max_batch))
        throw Error("forward_batch: {} sequences, but the backend was made for at most {} (max_batch)", B,
                    max_batch);
    if (tokens.size() != B) throw Error("forward_batch: {} tokens for {} sequences", tokens.size(), B);
    const size_t need = B * static_cast<size_t>(cfg.vocab_size);
    if (logits.size() < need)
        throw Error("forward_batch: the logits buffer holds {} floats, {} needed", logits.size(), need);
    std::vector<const Sequence*> sorted(seqs.begin(), seqs.end());
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() || sorted.front() == nullptr)
        throw Error("forward_batch: the sequences must be distinct");
    for (const int t : tokens) {
        if (t < 0 || t >= cfg.vocab_size)
            throw Error("token id {} is out of range [0, {})", t, cfg.vocab_size);
    }
}

}  // namespace dsa
