#pragma once
// Rotary position embedding on one (i, i + D/2) pair ("rotate_half" layout, as HF applies it). The angle is
// pos * inv_freq[i] rounded to fp32 once, as in HF's fp32 `inv_freq @ position_ids`; cos and sin carry the
// rope variant's attention scaling (yarn mscale, 1 otherwise). inv_freq comes from make_rope_table, which
// already folds in every scaling variant (default, linear, llama3, yarn).

namespace dsa::cuda {

__device__ __forceinline__ void rope_rotate(float& x0, float& x1, int pos, float inv_freq, float scaling) {
    float s, c;
    sincosf(static_cast<float>(pos) * inv_freq, &s, &c);
    c *= scaling;
    s *= scaling;
    const float y0 = x0 * c - x1 * s;
    const float y1 = x1 * c + x0 * s;
    x0 = y0;
    x1 = y1;
}

}  // namespace dsa::cuda
