#pragma once
// Host (CPU reference) paged KV cache, fp32 so the CPU backend is an exact reference.
// Per layer:   K, V pools  [num_pages][n_kv_heads][P][head_dim]   (HND: one head's page is contiguous)
// Per (layer, page, kv head) metadata, from post-RoPE keys exactly as cached, updated on every append
// including partial pages:  kmin[D], kmax[D] (Quest bounds), ksum[D] (NSA mean key = ksum / count), count.
// Bytes per page and layer (fp32): K+V = 2*H*P*D*4; metadata = H*(3*D*4 + 4).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kv/sequence.h"

namespace dsa {

struct KvCacheShape {
    int n_layers = 0;
    int n_kv_heads = 0;
    int head_dim = 0;
    int page_size = 16;  // P: 16, 32 or 64
    int num_pages = 0;
};

struct PageMetaView {
    float* kmin;  // [D]
    float* kmax;  // [D]
    float* ksum;  // [D]
    int32_t* count;
};

class PagedKvCache {
public:
    explicit PagedKvCache(const KvCacheShape& shape);

    const KvCacheShape& shape() const { return shape_; }
    int capacity_tokens() const { return shape_.num_pages * shape_.page_size; }
    int free_pages() const { return static_cast<int>(free_list_.size()); }

    // Grows seq's block table so it can hold `n_tokens` tokens. Throws dsa::Error when the pool is exhausted
    // ("KV cache full: ... tokens requested, capacity ...") and leaves seq unchanged.
    void reserve(Sequence& seq, int n_tokens);
    void release(Sequence& seq);  // returns seq's pages to the pool, n_tokens = 0

    float* k(int layer, int page, int kv_head);  // [P][D]
    float* v(int layer, int page, int kv_head);  // [P][D]
    const float* k(int layer, int page, int kv_head) const;
    const float* v(int layer, int page, int kv_head) const;
    PageMetaView meta(int layer, int page, int kv_head);
    const PageMetaView meta(int layer, int page, int kv_head) const;

    // Writes the K/V of position `pos` of `seq` (page must be reserved) and updates that page's metadata.
    // k, v: [n_kv_heads][head_dim]. Slot 0 of a page resets its metadata first.
    void append(int layer, const Sequence& seq, int pos, const float* k, const float* v);

    size_t kv_bytes_per_page_layer() const;    // K+V bytes of one page in one layer
    size_t meta_bytes_per_page_layer() const;  // metadata bytes of one page in one layer
    // Everything the cache allocates for `shape` (pools + metadata of every layer), to check against
    // free memory before constructing it.
    static size_t total_bytes(const KvCacheShape& shape);

private:
    size_t head_offset(int layer, int page, int kv_head) const;  // element offset of a [P][D] block
    size_t meta_index(int layer, int page, int kv_head) const;   // index of a (layer, page, head) triple
    KvCacheShape shape_;
    // Left uninitialised (new float[n]) so the OS commits pages only as tokens are written: a large -c
    // costs memory for what is used. A slot is read only after append() wrote it.
    std::unique_ptr<float[]> k_, v_;               // [n_layers][num_pages][n_kv_heads][P][D]
    std::unique_ptr<float[]> kmin_, kmax_, ksum_;  // [n_layers][num_pages][n_kv_heads][D]
    std::unique_ptr<int32_t[]> count_;             // [n_layers][num_pages][n_kv_heads]
    std::vector<int> free_list_;                   // page ids; pages are taken from the back
};

}  // namespace dsa
