#include "backend/cuda/cuda_check.h"
#include "kernels/attention_merge.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

// One block per row (sequence, query head); thread d owns dimension d.
template <typename T>
__global__ void attention_merge_kernel(const float* __restrict__ o_part, const float* __restrict__ lse_part,
                                       T* __restrict__ out, int n_split, int D) {
    pdl_begin();
    const size_t row = blockIdx.x;
    const float* lse = lse_part + row * n_split;
    float m = -INFINITY;
    for (int s = 0; s < n_split; ++s) m = fmaxf(m, lse[s]);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float num = 0.0f, den = 0.0f;
        for (int s = 0; s < n_split; ++s) {
            if (lse[s] == -INFINITY) continue;
            const float w = exp2f(lse[s] - m);
            num += w * o_part[(row * n_split + s) * D + d];
            den += w;
        }
        out[row * D + d] = from_f32<T>(den > 0.0f ? num / den : 0.0f);
    }
}

}  // namespace

void attention_merge(const float* o_part, const float* lse_part, void* out, DType out_dtype, int rows,
                     int n_split, int head_dim, cudaStream_t stream) {
    if (rows == 0) return;
    const int threads = head_dim < 128 ? 64 : 128;
    DSA_DISPATCH_DTYPE(out_dtype,
                       launch_kernel(attention_merge_kernel<T>, dim3(rows), dim3(threads), 0, stream, o_part,
                                     lse_part, static_cast<T*>(out), n_split, head_dim));
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
