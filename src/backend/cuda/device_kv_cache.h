#pragma once
// The paged KV cache on the device (bf16 K/V, bf16 Quest bounds, fp32 key sums) and its page allocator.
// Same allocation semantics as the CPU reference (kv/paged_cache.h); same K/V layout, metadata stored more
// compactly:
//   per layer K, V pools [num_pages][n_kv_heads][P][D] bf16;
//   per layer kminmax [num_pages][n_kv_heads][2][D] bf16: each (page, KV head) holds its D kmin then its D
//   kmax values in one contiguous run of 4*D bytes, so one warp reads both bounds with 16-byte loads
//   (D = 128: 512 bytes, one load per lane);
//   per layer ksum [num_pages][n_kv_heads][D] fp32 and count [num_pages][n_kv_heads] int32.
// kmin/kmax in bf16 are lossless: they are element-wise min/max of the cached bf16 keys, and the min or
// max of bf16 values is one of those values. They halve the bytes Quest's selection reads against fp32.
// ksum stays fp32: a sum of bf16 values is not a bf16 value.
// Bytes per page and layer: K+V 2*H*P*D*2 (64 KiB for 8 heads, P = 16, D = 128) + metadata
// H*(2*D*2 + D*4 + 4) (8 * (512 + 512 + 4) = 8.03 KiB): the metadata is 12.5% on top at P = 16, 3.1% at
// P = 64.
#include <cstdint>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "kv/paged_cache.h"
#include "kv/sequence.h"

namespace dsa::cuda {

class DeviceKvCache {
public:
    explicit DeviceKvCache(const KvCacheShape& shape);

    static size_t bytes_per_page(const KvCacheShape& shape);  // all layers, K/V and metadata

    const KvCacheShape& shape() const { return shape_; }
    int capacity_tokens() const { return shape_.num_pages * shape_.page_size; }
    int free_pages() const { return static_cast<int>(free_list_.size()); }

    // Grows seq's block table to hold n_tokens tokens; throws dsa::Error when the pool is exhausted and
    // leaves seq unchanged.
    void reserve(Sequence& seq, int n_tokens);
    void release(Sequence& seq);

    uint16_t* k(int layer) const;  // [num_pages][n_kv_heads][P][D] bf16
    uint16_t* v(int layer) const;
    uint16_t* kminmax(int layer) const;  // [num_pages][n_kv_heads][2][D] bf16: D kmin, then D kmax
    float* ksum(int layer) const;        // [num_pages][n_kv_heads][D]
    int32_t* count(int layer) const;     // [num_pages][n_kv_heads]

private:
    size_t kv_elems_per_layer() const;
    size_t meta_elems_per_layer() const;  // [num_pages][n_kv_heads][D]: ksum; kminmax holds twice as many

    KvCacheShape shape_;
    DeviceBuffer k_, v_, kminmax_, ksum_, count_;
    std::vector<int> free_list_;  // page ids; taken from the back
};

}  // namespace dsa::cuda
