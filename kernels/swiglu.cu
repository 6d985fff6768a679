#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"
#include "kernels/swiglu.h"

namespace dsa::cuda {

namespace {

constexpr int kThreads = 256;

// Grid (column blocks, n_tokens): thread i of a block handles kVec consecutive columns of one token, so
// the gate, up and out accesses are kVec-element vectors and no flat index is divided by `inter` (the
// 64-bit division per element of a grid-stride loop made this kernel instruction-bound at ~2 TB/s).
// Precondition: inter % kVec == 0.
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) swiglu_kernel(const float* __restrict__ gate_up, T* __restrict__ out,
                                                          int inter) {
    pdl_begin();
    const int c = (blockIdx.x * kThreads + threadIdx.x) * kVec;
    if (c >= inter) return;
    const size_t t = blockIdx.y;
    const float* g = gate_up + t * 2 * inter + c;
    const float* u = g + inter;
    struct alignas(4 * kVec) InVec {
        float v[kVec];
    };
    struct alignas(sizeof(T) * kVec) OutVec {
        T v[kVec];
    };
    const InVec gv = *reinterpret_cast<const InVec*>(g), uv = *reinterpret_cast<const InVec*>(u);
    OutVec o;
#pragma unroll
    for (int e = 0; e < kVec; ++e) o.v[e] = from_f32<T>(gv.v[e] / (1.0f + expf(-gv.v[e])) * uv.v[e]);
    *reinterpret_cast<OutVec*>(out + t * inter + c) = o;
}

template <typename T>
void launch(const float* gate_up, void* out, int n_tokens, int inter, cudaStream_t stream) {
    auto go = [&](auto vec) {
        constexpr int kVec = decltype(vec)::value;
        const dim3 grid((inter / kVec + kThreads - 1) / kThreads, n_tokens);
        launch_kernel(swiglu_kernel<T, kVec>, grid, dim3(kThreads), 0, stream, gate_up, static_cast<T*>(out),
                      inter);
    };
    if (inter % 4 == 0)
        go(std::integral_constant<int, 4>{});
    else
        go(std::integral_constant<int, 1>{});
}

}  // namespace

void swiglu(const float* gate_up, void* out, DType out_dtype, int n_tokens, int inter, cudaStream_t stream) {
    if (n_tokens == 0 || inter == 0) return;
    if (n_tokens > 65535) throw_error("CUDA swiglu: more than 65535 tokens in one call");
    DSA_DISPATCH_DTYPE(out_dtype, launch<T>(gate_up, out, n_tokens, inter, stream));
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
