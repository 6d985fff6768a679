#pragma once
// Token embedding lookup: out[t][:] = fp32(table[tokens[t]][:]).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "util/dtype.h"

namespace dsa::cuda {

// tokens: [n_tokens] device ids, already checked to be < vocab on the host.
// table:  [vocab][hidden] in `dtype`.   out: [n_tokens][hidden] fp32 (the residual stream).
void embed_tokens(const int32_t* tokens, const void* table, DType dtype, float* out, int n_tokens, int hidden,
                  cudaStream_t stream);

}  // namespace dsa::cuda
