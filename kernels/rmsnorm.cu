#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"
#include "kernels/rmsnorm.h"

namespace dsa::cuda {

namespace {

// One block per row: the row (16 KB for hidden 4096) is read twice, the second time from L1/L2.
template <typename T>
__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, T* __restrict__ out,
                               int cols, float eps) {
    pdl_begin();
    const float* row = x + static_cast<size_t>(blockIdx.x) * cols;
    T* dst = out + static_cast<size_t>(blockIdx.x) * cols;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) ss += row[i] * row[i];
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(cols) + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = from_f32<T>(row[i] * inv * w[i]);
}

}  // namespace

void rmsnorm(const float* x, const float* weight, void* out, DType out_dtype, int rows, int cols, float eps,
             cudaStream_t stream) {
    if (rows == 0) return;
    DSA_DISPATCH_DTYPE(out_dtype, launch_kernel(rmsnorm_kernel<T>, dim3(rows), dim3(256), 0, stream, x,
                                                weight, static_cast<T*>(out), cols, eps));
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
