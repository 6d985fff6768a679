#pragma once
// Page metadata of the keys just appended, read back from the cache exactly as cached (bf16), per
// (page, KV head): element-wise kmin, kmax (Quest bounds), ksum (NSA mean key = ksum / count), count.
// A chunk that starts a page (slot 0) resets that page's metadata; later chunks extend it. kmin and kmax
// are stored in bf16, interleaved per (page, KV head), losslessly: the min or max of bf16 keys is one of
// those keys. ksum stays fp32 (a sum of bf16 values is not one). Bytes per page and layer:
// n_kv_heads * (2 * D * 2 + D * 4 + 4), e.g. 8 * 1028 = 8.03 KiB for D = 128 (the K/V are 64 KiB at P = 16).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsa::cuda {

struct KvMetadataParams {
    const uint16_t* k_pool = nullptr;      // [num_pages][n_kv_heads][P][D] bf16 (this layer's pool)
    uint16_t* kminmax = nullptr;           // [num_pages][n_kv_heads][2][D] bf16: D kmin, then D kmax
    float* ksum = nullptr;                 // [num_pages][n_kv_heads][D]
    int32_t* count = nullptr;              // [num_pages][n_kv_heads]
    const int32_t* start_pos = nullptr;    // [1] device: position of the first appended token
    const int32_t* block_table = nullptr;  // [pages] device
    int n_tokens = 0, n_kv_heads = 0, head_dim = 0, page_size = 16;
};

void kv_metadata_update(const KvMetadataParams& p, cudaStream_t stream);

}  // namespace dsa::cuda
