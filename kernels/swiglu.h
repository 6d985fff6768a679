#pragma once
// SwiGLU of the fused gate/up projection: out[t][i] = silu(gate[t][i]) * up[t][i].
#include <cuda_runtime_api.h>

#include "util/dtype.h"

namespace dsa::cuda {

// gate_up: [n_tokens][2 * inter] in `in_dtype`, fp32 or out_dtype (gate in columns [0, inter), up in
//          [inter, 2 * inter)). out: [n_tokens][inter] in `out_dtype` (the down projection's input).
// n_tokens <= 65535. The arithmetic is the same in every case: silu(g) * u in fp32, rounded once.
void swiglu(const void* gate_up, DType in_dtype, void* out, DType out_dtype, int n_tokens, int inter,
            cudaStream_t stream);

}  // namespace dsa::cuda
