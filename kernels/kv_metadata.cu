#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/kv_metadata.h"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

// Block (b, h): the b-th page the chunk touches, KV head h; thread d owns dimension d. Blocks past the
// chunk's last page exit (the grid is sized for the worst alignment, since the start is read on the device).
__global__ void kv_metadata_kernel(KvMetadataParams p) {
    pdl_begin();
    const int P = p.page_size, D = p.head_dim, h = blockIdx.y;
    const int start = *p.start_pos, end = start + p.n_tokens;
    const int block = start / P + blockIdx.x;
    const int lo = max(start, block * P) - block * P;
    const int hi = min(end, (block + 1) * P) - block * P;
    if (lo >= hi) return;
    const int page = p.block_table[block];
    const size_t mi = static_cast<size_t>(page) * p.n_kv_heads + h;
    const bf16* k = reinterpret_cast<const bf16*>(p.k_pool) + mi * P * D;
    bf16* kmin = reinterpret_cast<bf16*>(p.kminmax) + mi * 2 * D;  // [D], followed by kmax [D]
    bf16* kmax = kmin + D;
    float* ksum = p.ksum + mi * D;  // [D]
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float mn = INFINITY, mx = -INFINITY, sum = 0.0f;
        if (lo > 0) {
            mn = __bfloat162float(kmin[d]);
            mx = __bfloat162float(kmax[d]);
            sum = ksum[d];
        }
        for (int s = lo; s < hi; ++s) {
            const float v = __bfloat162float(k[static_cast<size_t>(s) * D + d]);
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
            sum += v;
        }
        // hi > lo: mn and mx are keys of the page, bf16 values, so the conversion is exact.
        kmin[d] = __float2bfloat16_rn(mn);
        kmax[d] = __float2bfloat16_rn(mx);
        ksum[d] = sum;
    }
    if (threadIdx.x == 0) p.count[mi] = hi;
}

}  // namespace

void kv_metadata_update(const KvMetadataParams& p, cudaStream_t stream) {
    if (p.n_tokens == 0) return;
    const dim3 grid((p.n_tokens + p.page_size - 1) / p.page_size + 1, p.n_kv_heads);
    launch_kernel(kv_metadata_kernel, grid, dim3(p.head_dim < 256 ? p.head_dim : 256), 0, stream, p);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
