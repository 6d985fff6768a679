#pragma once
// 8-lane fp32 vectors (GCC/Clang vector extensions) for the CPU backend's inner loops. Explicit vectors
// keep the accumulators in registers (2.5x the auto-vectorised loops here); the hot functions are built
// twice with target_clones ("avx2" and the baseline), and since both do the same lane-wise operations in
// the same order (no FMA contraction in ISO C++ mode), their results are bit-identical.
#include <cstddef>

namespace dsa::simd {

using f32x8 = float __attribute__((vector_size(32)));

// Loads/stores through memcpy: no alignment requirement. Out-parameters rather than return values, so no
// function has a 32-byte vector in its ABI.
[[gnu::always_inline]] inline void load8(f32x8& v, const float* p) {
    __builtin_memcpy(&v, p, sizeof(v));
}
[[gnu::always_inline]] inline void store8(float* p, const f32x8& v) {
    __builtin_memcpy(p, &v, sizeof(v));
}

[[gnu::always_inline]] inline float hsum8(const f32x8& a) {
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// a · b over n elements: 8 lane-wise partial sums (rounding error grows like sqrt(n/8)), then the tail.
[[gnu::always_inline]] inline float dot(const float* a, const float* b, int n) {
    f32x8 acc = {};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        f32x8 va, vb;
        load8(va, a + i);
        load8(vb, b + i);
        acc += va * vb;
    }
    float tail = 0.0f;
    for (; i < n; ++i) tail += a[i] * b[i];
    return hsum8(acc) + tail;
}

// y += p * x over n elements.
[[gnu::always_inline]] inline void axpy(float* y, float p, const float* x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        f32x8 vy, vx;
        load8(vy, y + i);
        load8(vx, x + i);
        vy += p * vx;
        store8(y + i, vy);
    }
    for (; i < n; ++i) y[i] += p * x[i];
}

// y *= s over n elements.
[[gnu::always_inline]] inline void scale(float* y, float s, int n) {
    for (int i = 0; i < n; ++i) y[i] *= s;
}

}  // namespace dsa::simd
