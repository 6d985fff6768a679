#pragma once
// Matrix-vector product for batch-1 decode, where every weight byte is read once per token and the
// problem is purely bandwidth-bound: y[n] = beta * y[n] + sum_k W[n][k] x[k]. beta = 1 accumulates into the
// fp32 residual stream (the residual add, fused); beta = 0 never reads y.
#include <cuda_runtime_api.h>

#include "util/dtype.h"

namespace dsa::cuda {

// Whether gemv() handles this shape: rows of whole 16-byte vectors.
bool gemv_supported(int k, DType dtype);

// w: [n][k] in `dtype`.  x: [k] in `dtype`.  y: [n] fp32.
// variant: (rows per warp, 16-byte loads in flight per row, blocks of 256 threads per multiprocessor the
// register cap allows): 0: (2, 4, 3), 1: (2, 4, 1), 2: (1, 4, 4), 3: (2, 2, 4). All give bit-identical
// results (same per-row summation order); Linear::tune_gemv picks the fastest per shape.
constexpr int gemv_variants = 4;
void gemv(const void* w, const void* x, DType dtype, float* y, int n, int k, float beta, cudaStream_t stream,
          int variant = 0);

}  // namespace dsa::cuda
