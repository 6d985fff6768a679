#pragma once
// Greedy sampling on the device: the index of each row's largest logit (ties: the lower index, as the CPU
// sampler's first-maximum rule), so a greedy decode step copies 4 bytes to the host instead of the logits.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsa::cuda {

// x: [rows][cols] fp32.  out: [rows] int32.
void argmax_rows(const float* x, int32_t* out, int rows, int cols, cudaStream_t stream);

}  // namespace dsa::cuda
