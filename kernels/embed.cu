#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/embed.h"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

// One block per token; a memory copy with a dtype conversion.
template <typename T>
__global__ void embed_kernel(const int32_t* __restrict__ tokens, const T* __restrict__ table,
                             float* __restrict__ out, int hidden) {
    pdl_begin();
    const int t = blockIdx.x;
    const T* row = table + static_cast<size_t>(tokens[t]) * hidden;
    float* dst = out + static_cast<size_t>(t) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = to_f32(row[i]);
}

}  // namespace

void embed_tokens(const int32_t* tokens, const void* table, DType dtype, float* out, int n_tokens, int hidden,
                  cudaStream_t stream) {
    if (n_tokens == 0) return;
    DSA_DISPATCH_DTYPE(dtype, launch_kernel(embed_kernel<T>, dim3(n_tokens), dim3(256), 0, stream, tokens,
                                            static_cast<const T*>(table), out, hidden));
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
