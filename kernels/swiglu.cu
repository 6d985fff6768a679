#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"
#include "kernels/swiglu.h"

namespace dsa::cuda {

namespace {

template <typename T>
__global__ void swiglu_kernel(const float* __restrict__ gate_up, T* __restrict__ out, int inter, size_t n) {
    pdl_begin();
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        const size_t t = i / inter, c = i % inter;
        const float g = gate_up[t * 2 * inter + c];
        const float u = gate_up[t * 2 * inter + inter + c];
        out[i] = from_f32<T>(g / (1.0f + expf(-g)) * u);
    }
}

}  // namespace

void swiglu(const float* gate_up, void* out, DType out_dtype, int n_tokens, int inter, cudaStream_t stream) {
    const size_t n = static_cast<size_t>(n_tokens) * inter;
    if (n == 0) return;
    const int blocks = static_cast<int>(std::min<size_t>((n + 255) / 256, 132 * 16));
    DSA_DISPATCH_DTYPE(out_dtype, launch_kernel(swiglu_kernel<T>, dim3(blocks), dim3(256), 0, stream, gate_up,
                                                static_cast<T*>(out), inter, n));
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
