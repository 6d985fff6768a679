#pragma once
// Rotary position embedding on one (i, i + D/2) pair ("rotate_half" layout, as HF applies it). The angle is
// pos * inv_freq[i] rounded to fp32 once, as in HF's fp32 `inv_freq @ position_ids`; cos and sin carry the
// rope variant's attention scaling (yarn mscale, 1 otherwise). inv_freq comes from make_rope_table, which
// already folds in every scaling variant (default, linear, llama3, yarn).
//
// Every operation is an explicitly rounded intrinsic: with plain `x0 * c - x1 * s` the compiler chooses
// where to contract into an FMA per call site, and the attention-input kernel (angles once per lane) and the
// q/k/v GEMV's fused epilogue (angles per element) must write bit-identical q and K.

namespace dsa::cuda {

__device__ __forceinline__ void rope_cos_sin(int pos, float inv_freq, float scaling, float& c, float& s) {
    sincosf(__fmul_rn(static_cast<float>(pos), inv_freq), &s, &c);
    c = __fmul_rn(c, scaling);
    s = __fmul_rn(s, scaling);
}

__device__ __forceinline__ void rope_apply(float& x0, float& x1, float c, float s) {
    const float y0 = __fmaf_rn(x0, c, -__fmul_rn(x1, s));
    const float y1 = __fmaf_rn(x1, c, __fmul_rn(x0, s));
    x0 = y0;
    x1 = y1;
}

}  // namespace dsa::cuda
