#pragma once
// Matrix-vector product for batch-1 decode, where every weight byte is read once per token and the
// problem is purely bandwidth-bound: y[n] = beta * y[n] + sum_k W[n][k] x[k]. beta = 1 accumulates into the
// fp32 residual stream (the residual add, fused); beta = 0 never reads y.
//
// Four fusions remove the small kernels around a decode layer's projections (each launch boundary costs
// ~3 us of drain and ramp, docs/perf.md "Decode step"):
// - RMSNorm in: x = rmsnorm(norm_in) * norm_weight, computed by every block into shared memory exactly as
//   rmsnorm() computes it (same 256-thread summation order, same rounding to the weights' dtype), so the
//   product is bit-identical to rmsnorm() followed by gemv().
// - SwiGLU out: for W = [gate; up] (n = 2 I rows), act[i] = silu(W_i x) * (W_{I+i} x) in the weights'
//   dtype, the two rows of a pair summed by one warp; bit-identical to gemv() followed by swiglu().
// - Attention input out: for W the fused q/k/v projection of one token, a warp sums the rotation pair
//   (h D + j, h D + j + D/2) of head h and finishes it as attention_input() does (bias, RoPE, q out, the K/V
//   append and the page metadata): bit-identical to gemv() followed by attention_input(). Not with q/k norm
//   (Qwen3), which needs the whole head.
// - Argmax out: y as usual, and the index of its largest element (first on ties, NaN never wins: argmax.h's
//   rule) from per-block winners merged by the last block to finish (an atomic ticket it resets), so the
//   LM head gives the greedy token without another launch.
//
// Blocks are persistent when the variant asks for it, and always with the norm or the argmax fused: the
// grid is at most one wave and each warp strides over row groups, so the norm is computed once per block,
// not once per row group, and the argmax merges one winner per resident block.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/attention_input.h"
#include "util/dtype.h"

namespace dsa::cuda {

struct GemvArgs {
    const void* w = nullptr;             // [n][k] in dtype
    const void* x = nullptr;             // [k] in dtype; unused with norm_in
    const float* norm_in = nullptr;      // [k] fp32, optional: x = rmsnorm(norm_in) * norm_weight instead
    const float* norm_weight = nullptr;  // [k] fp32
    float norm_eps = 0.0f;
    float* y = nullptr;  // [n] fp32; unused with swiglu_out
    float beta = 0.0f;
    void* swiglu_out = nullptr;  // [n / 2] in dtype, optional: silu(gate) * up instead of y (n even)
    // Optional: finish the q/k/v rows as attention_input(attention) would, instead of y; attention.qkv is
    // unused, attention.n_tokens must be 1 and n = (n_heads + 2 n_kv_heads) * head_dim.
    bool to_attention_input = false;
    AttentionInputParams attention;
    // Optional, with y and beta 0: argmax_out[0] = the index of the largest y; argmax_scratch:
    // gemv_argmax_scratch_bytes(), zeroed once before the first use (each call leaves it ready for the next).
    int32_t* argmax_out = nullptr;
    void* argmax_scratch = nullptr;
    int n = 0, k = 0;
    DType dtype = DType::BF16;
};

// Whether gemv() handles this shape: rows of whole 16-byte vectors, and with norm_in x fitting in 48 KB of
// shared memory.
bool gemv_supported(int k, DType dtype, bool norm_in = false);

// Bytes of GemvArgs::argmax_scratch on the current device.
size_t gemv_argmax_scratch_bytes();

// variant % 4: (rows per warp, 16-byte loads in flight per row, blocks of 256 threads per multiprocessor the
// register cap allows): 0: (2, 4, 3), 1: (2, 4, 1), 2: (1, 4, 4), 3: (2, 2, 4); variant >= 4: the same with
// persistent blocks. All give bit-identical results (same per-row summation order); Linear::tune_gemv picks
// the fastest per shape. The paired epilogues need two rows per warp: variant 2 runs as 0 there.
constexpr int gemv_variants = 8;
void gemv(const GemvArgs& a, cudaStream_t stream, int variant = 0);

}  // namespace dsa::cuda
