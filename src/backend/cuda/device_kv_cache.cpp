#include "backend/cuda/device_kv_cache.h"

#include "util/error.h"

namespace dsa::cuda {

size_t DeviceKvCache::kv_elems_per_layer() const {
    return static_cast<size_t>(shape_.num_pages) * shape_.n_kv_heads * shape_.page_size * shape_.head_dim;
}

size_t DeviceKvCache::meta_elems_per_layer() const {
    return static_cast<size_t>(shape_.num_pages) * shape_.n_kv_heads * shape_.head_dim;
}

size_t DeviceKvCache::bytes_per_page(const KvCacheShape& s) {
    const size_t per_layer =
        static_cast<size_t>(s.n_kv_heads) *
        (2 * static_cast<size_t>(s.page_size) * s.head_dim * 2 + 2 * s.head_dim * 2 + s.head_dim * 4 + 4);
    return per_layer * s.n_layers;
}

DeviceKvCache::DeviceKvCache(const KvCacheShape& shape) : shape_(shape) {
    const size_t L = static_cast<size_t>(shape.n_layers);
    k_ = DeviceBuffer(L * kv_elems_per_layer() * 2, "KV cache keys");
    v_ = DeviceBuffer(L * kv_elems_per_layer() * 2, "KV cache values");
    kminmax_ = DeviceBuffer(L * 2 * meta_elems_per_layer() * 2, "KV page metadata (kmin, kmax)");
    ksum_ = DeviceBuffer(L * meta_elems_per_layer() * 4, "KV page metadata (ksum)");
    count_ = DeviceBuffer(L * shape.num_pages * shape.n_kv_heads * 4, "KV page metadata (count)");
    free_list_.reserve(static_cast<size_t>(shape.num_pages));
    for (int p = shape.num_pages - 1; p >= 0; --p) free_list_.push_back(p);
}

void DeviceKvCache::reserve(Sequence& seq, int n_tokens) {
    const int need = (n_tokens + shape_.page_size - 1) / shape_.page_size;
    const int extra = need - static_cast<int>(seq.pages.size());
    if (extra <= 0) return;
    if (extra > free_pages()) {
        throw Error(
            "KV cache full: {} tokens requested, capacity {} tokens ({} pages of {}, {} free); raise -c",
            n_tokens, capacity_tokens(), shape_.num_pages, shape_.page_size, free_pages());
    }
    for (int i = 0; i < extra; ++i) {
        seq.pages.push_back(free_list_.back());
        free_list_.pop_back();
    }
}

void DeviceKvCache::release(Sequence& seq) {
    for (auto it = seq.pages.rbegin(); it != seq.pages.rend(); ++it) free_list_.push_back(*it);
    seq.pages.clear();
    seq.n_tokens = 0;
}

uint16_t* DeviceKvCache::k(int layer) const {
    return k_.as<uint16_t>() + layer * kv_elems_per_layer();
}
uint16_t* DeviceKvCache::v(int layer) const {
    return v_.as<uint16_t>() + layer * kv_elems_per_layer();
}
uint16_t* DeviceKvCache::kminmax(int layer) const {
    return kminmax_.as<uint16_t>() + layer * 2 * meta_elems_per_layer();
}
float* DeviceKvCache::ksum(int layer) const {
    return ksum_.as<float>() + layer * meta_elems_per_layer();
}
int32_t* DeviceKvCache::count(int layer) const {
    return count_.as<int32_t>() + static_cast<size_t>(layer) * shape_.num_pages * shape_.n_kv_heads;
}

}  // namespace dsa::cuda
