#pragma once
// y = beta * y + x W^T for the model's projections: cuBLAS for several rows (prefill), the bandwidth-bound
// GEMV kernel for one row (decode). fp32 accumulation and fp32 output either way; beta = 1 fuses the
// residual add. fp32 weights use plain fp32 cuBLAS (no TF32), so fp32 models stay fp32-exact in GEMMs.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <map>
#include <utility>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "kernels/gemv.h"
#include "util/dtype.h"

namespace dsa::cuda {

// Which of the GEMV's fusions (gemv.h) the one-row decode step uses; each level adds one to the one before:
// SwiGLU in the gate/up GEMV's epilogue; RMSNorm in the q/k/v GEMV's prologue; attention_input in the q/k/v
// GEMV's epilogue (models without q/k norm); the final RMSNorm and the greedy argmax in the LM-head GEMV.
// `cuda_bench model` measures every level (docs/perf.md, "Decode step"); the default is the fastest measured.
// (The MLP's RMSNorm in the gate/up GEMV's prologue measured no faster and is not offered.)
enum class RowFusion { None, Swiglu, NormQkv, AttentionInput, LmHead };
void set_row_fusion(RowFusion mode);
RowFusion row_fusion();

class Linear {
public:
    explicit Linear(cudaStream_t stream);
    ~Linear();
    Linear(const Linear&) = delete;
    Linear& operator=(const Linear&) = delete;

    // x: [m][k] in `dtype`.  w: [n][k] in `dtype`.  y: [m][n] fp32.
    void operator()(const void* x, const void* w, DType dtype, float* y, int m, int n, int k, float beta);

    // One row through the GEMV kernel with the variant tuned for (a.n, a.k), fusions included (gemv.h):
    // the decode step of one sequence. Precondition: gemv_supported(a.k, a.dtype, a.norm_in != nullptr).
    void row(const GemvArgs& a);

    // Times every GEMV variant on `weights` (one [n][k] matrix per layer, run in turn so the timing reads
    // memory, not L2) and uses the fastest for this shape from now on. x: [k], scratch_y: [n].
    void tune_gemv(const std::vector<const void*>& weights, const void* x, DType dtype, float* scratch_y,
                   int n, int k);

private:
    cudaStream_t stream_;
    cublasHandle_t handle_ = nullptr;
    DeviceBuffer workspace_;  // set explicitly so cuBLAS never allocates (CUDA graph capture)
    std::map<std::pair<int, int>, int> gemv_variant_;  // (n, k) -> tuned variant
};

}  // namespace dsa::cuda
