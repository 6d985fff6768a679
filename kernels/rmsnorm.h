#pragma once
// RMSNorm of fp32 rows (the residual stream): out = x / sqrt(mean(x^2) + eps) * weight, written in the
// dtype the next GEMM reads. The residual add that precedes it in the model is fused into the GEMM that
// produces it (cuBLAS/GEMV with beta = 1 accumulate into the fp32 residual), so no separate add pass.
#include <cuda_runtime_api.h>

#include "util/dtype.h"

namespace dsa::cuda {

// x: [rows][cols] fp32.  weight: [cols] fp32.  out: [rows][cols] in `out_dtype`.
void rmsnorm(const float* x, const float* weight, void* out, DType out_dtype, int rows, int cols, float eps,
             cudaStream_t stream);

}  // namespace dsa::cuda
