#pragma once
// Log-sum-exp merge of split attention outputs (split-KV decode):
//   out[row] = sum_s 2^(lse_s - M) o_s / sum_s 2^(lse_s - M),  M = max_s lse_s,
// where o_s is split s's normalised output and lse_s its log2-sum-exp2; splits with lse = -inf are empty and
// skipped (their o_s is never read). A row whose splits are all empty gets zeros.
#include <cuda_runtime_api.h>

#include "util/dtype.h"

namespace dsa::cuda {

// o_part: [rows][n_split][D] fp32.  lse_part: [rows][n_split] fp32.  out: [rows][D] in `out_dtype`.
void attention_merge(const float* o_part, const float* lse_part, void* out, DType out_dtype, int rows,
                     int n_split, int head_dim, cudaStream_t stream);

}  // namespace dsa::cuda
