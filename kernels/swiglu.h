#pragma once
// SwiGLU of the fused gate/up projection: out[t][i] = silu(gate[t][i]) * up[t][i].
#include <cuda_runtime_api.h>

#include "util/dtype.h"

namespace dsa::cuda {

// gate_up: [n_tokens][2 * inter] fp32 (gate in columns [0, inter), up in [inter, 2 * inter)).
// out:     [n_tokens][inter] in `out_dtype` (the down projection's input). n_tokens <= 65535.
void swiglu(const float* gate_up, void* out, DType out_dtype, int n_tokens, int inter, cudaStream_t stream);

}  // namespace dsa::cuda
