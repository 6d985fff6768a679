#include "kv/paged_cache.h"

#include <algorithm>

#include "util/error.h"

namespace dsa {

namespace {

size_t kv_elems(const KvCacheShape& s) {
    return static_cast<size_t>(s.n_layers) * s.num_pages * s.n_kv_heads * s.page_size * s.head_dim;
}

size_t meta_triples(const KvCacheShape& s) {
    return static_cast<size_t>(s.n_layers) * s.num_pages * s.n_kv_heads;
}

}  // namespace

PagedKvCache::PagedKvCache(const KvCacheShape& shape) : shape_(shape) {
    if (shape.page_size != 16 && shape.page_size != 32 && shape.page_size != 64)
        throw Error("KV cache page size must be 16, 32 or 64 tokens, got {}", shape.page_size);
    if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.num_pages <= 0)
        throw Error("KV cache shape must be positive: {} layers, {} kv heads, head_dim {}, {} pages",
                    shape.n_layers, shape.n_kv_heads, shape.head_dim, shape.num_pages);
    const size_t n_kv = kv_elems(shape);
    const size_t n_meta = meta_triples(shape);
    k_.reset(new float[n_kv]);
    v_.reset(new float[n_kv]);
    kmin_.reset(new float[n_meta * shape.head_dim]);
    kmax_.reset(new float[n_meta * shape.head_dim]);
    ksum_.reset(new float[n_meta * shape.head_dim]);
    count_.reset(new int32_t[n_meta]);
    // Reversed so that pages are handed out in increasing order (0, 1, 2, ...).
    free_list_.resize(shape.num_pages);
    for (int i = 0; i < shape.num_pages; ++i) free_list_[i] = shape.num_pages - 1 - i;
}

size_t PagedKvCache::total_bytes(const KvCacheShape& s) {
    return kv_elems(s) * 2 * sizeof(float) +
           meta_triples(s) * (3 * s.head_dim * sizeof(float) + sizeof(int32_t));
}

size_t PagedKvCache::head_offset(int layer, int page, int kv_head) const {
    return meta_index(layer, page, kv_head) * shape_.page_size * shape_.head_dim;
}

size_t PagedKvCache::meta_index(int layer, int page, int kv_head) const {
    return (static_cast<size_t>(layer) * shape_.num_pages + page) * shape_.n_kv_heads + kv_head;
}

void PagedKvCache::reserve(Sequence& seq, int n_tokens) {
    const int P = shape_.page_size;
    const int need = (n_tokens + P - 1) / P;
    const int extra = need - static_cast<int>(seq.pages.size());
    if (extra <= 0) return;
    if (extra > free_pages()) {
        const int reachable = (static_cast<int>(seq.pages.size()) + free_pages()) * P;
        throw Error("KV cache full: {} tokens requested, room for {} (cache capacity {} tokens; raise -c)",
                    n_tokens, reachable, capacity_tokens());
    }
    for (int i = 0; i < extra; ++i) {
        seq.pages.push_back(free_list_.back());
        free_list_.pop_back();
    }
}

void PagedKvCache::release(Sequence& seq) {
    // Returned in reverse so that a following reserve() reuses them in the same order.
    for (auto it = seq.pages.rbegin(); it != seq.pages.rend(); ++it) free_list_.push_back(*it);
    seq.pages.clear();
    seq.n_tokens = 0;
}

float* PagedKvCache::k(int layer, int page, int kv_head) {
    return k_.get() + head_offset(layer, page, kv_head);
}
float* PagedKvCache::v(int layer, int page, int kv_head) {
    return v_.get() + head_offset(layer, page, kv_head);
}
const float* PagedKvCache::k(int layer, int page, int kv_head) const {
    return k_.get() + head_offset(layer, page, kv_head);
}
const float* PagedKvCache::v(int layer, int page, int kv_head) const {
    return v_.get() + head_offset(layer, page, kv_head);
}

PageMetaView PagedKvCache::meta(int layer, int page, int kv_head) {
    const size_t m = meta_index(layer, page, kv_head);
    const size_t d = m * shape_.head_dim;
    return {kmin_.get() + d, kmax_.get() + d, ksum_.get() + d, count_.get() + m};
}

const PageMetaView PagedKvCache::meta(int layer, int page, int kv_head) const {
    return const_cast<PagedKvCache*>(this)->meta(layer, page, kv_head);
}

void PagedKvCache::append(int layer, const Sequence& seq, int pos, const float* k, const float* v) {
    const int P = shape_.page_size;
    const int D = shape_.head_dim;
    if (pos < 0 || pos / P >= static_cast<int>(seq.pages.size()))
        throw Error("KV cache append at position {} outside the {} reserved pages", pos, seq.pages.size());
    const int page = seq.pages[pos / P];
    const int slot = pos % P;
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
        const float* kh = k + static_cast<size_t>(h) * D;  // [D]
        const float* vh = v + static_cast<size_t>(h) * D;  // [D]
        std::copy_n(kh, D, this->k(layer, page, h) + static_cast<size_t>(slot) * D);
        std::copy_n(vh, D, this->v(layer, page, h) + static_cast<size_t>(slot) * D);
        PageMetaView m = meta(layer, page, h);
        if (slot == 0) {
            std::copy_n(kh, D, m.kmin);
            std::copy_n(kh, D, m.kmax);
            std::copy_n(kh, D, m.ksum);
            *m.count = 1;
            continue;
        }
        for (int i = 0; i < D; ++i) {
            m.kmin[i] = std::min(m.kmin[i], kh[i]);
            m.kmax[i] = std::max(m.kmax[i], kh[i]);
            m.ksum[i] += kh[i];
        }
        *m.count += 1;
    }
}

size_t PagedKvCache::kv_bytes_per_page_layer() const {
    return 2 * static_cast<size_t>(shape_.n_kv_heads) * shape_.page_size * shape_.head_dim * sizeof(float);
}

size_t PagedKvCache::meta_bytes_per_page_layer() const {
    return static_cast<size_t>(shape_.n_kv_heads) * (3 * shape_.head_dim * sizeof(float) + sizeof(int32_t));
}

}  // namespace dsa
