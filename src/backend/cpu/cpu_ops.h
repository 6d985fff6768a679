#pragma once
// fp32 building blocks of the CPU reference forward pass. Weights stay in their stored dtype (F32/F16/BF16,
// usually mmapped) and are converted a few rows at a time, so an 8B bf16 model is never upcast whole.
#include <cstddef>

#include "model/tensor.h"

namespace dsa {

class ThreadPool;

// out[T][N] = x[T][K] · w[N][K]^T (+ bias[N] when not null). Rows of w are split over the pool's threads;
// each thread converts a tile of 16 rows to fp32 and multiplies it with all T activations, so a weight
// byte is read once per call whatever T is. Each output is a dot product with 8 lane-wise partial sums,
// the same arithmetic whatever T, the chunking or the thread count.
void matmul(ThreadPool& pool, const float* x, int T, const TensorView& w, const float* bias, float* out);

// Elements [first, first + n) of a weight buffer of dtype t as fp32 (branch-free, vectorisable; equal to
// load_as_f32 for every value, NaN payloads aside). out: [n].
void weights_to_f32(const void* base, DType t, size_t first, size_t n, float* out);

// out[t] = weight * x[t] / sqrt(mean(x[t]^2) + eps) for each of the T rows of n elements, as HF's RMSNorm
// in fp32. x, out: [T][n] (may alias); weight: [n].
void rmsnorm(const float* x, int T, int n, const float* weight, float eps, float* out);

// RoPE in HF's rotate_half layout on x: [T][n_heads][D], with cos, sin: [T][D/2] (attention scaling
// already multiplied in): x[i] = x[i] cos - x[i+D/2] sin, x[i+D/2] = x[i+D/2] cos + x[i] sin.
void apply_rope(float* x, int T, int n_heads, int D, const float* cos, const float* sin);

// gate[i] = silu(gate[i]) * up[i]; gate, up: [n].
void silu_mul(float* gate, const float* up, size_t n);

}  // namespace dsa
