#include "backend/cuda/cuda_check.h"
#include "kernels/argmax.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"

namespace dsa::cuda {

namespace {

__device__ __forceinline__ void keep_better(float& v, int& i, float v2, int i2) {
    if (v2 > v || (v2 == v && i2 < i)) {
        v = v2;
        i = i2;
    }
}

// One block of 1024 threads per row: 128K logits are 125 strided loads per thread.
__global__ void __launch_bounds__(1024)
    argmax_kernel(const float* __restrict__ x, int32_t* __restrict__ out, int cols) {
    pdl_begin();
    __shared__ float sv[32];
    __shared__ int si[32];
    const float* row = x + static_cast<size_t>(blockIdx.x) * cols;
    float v = -INFINITY;
    int idx = cols;  // loses every tie against a real index
    for (int c = threadIdx.x; c < cols; c += blockDim.x) keep_better(v, idx, row[c], c);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        keep_better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / 32 ? sv[lane] : -INFINITY;
        idx = lane < blockDim.x / 32 ? si[lane] : cols;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
            keep_better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
        if (lane == 0) out[blockIdx.x] = idx < cols ? idx : 0;
    }
}

}  // namespace

void argmax_rows(const float* x, int32_t* out, int rows, int cols, cudaStream_t stream) {
    if (rows == 0) return;
    launch_kernel(argmax_kernel, dim3(rows), dim3(1024), 0, stream, x, out, cols);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
