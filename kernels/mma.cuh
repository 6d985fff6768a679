#pragma once
// Warp-level tensor-core and async-copy primitives (sm_80+, used on sm_90): mma.sync m16n8k16 bf16 with
// fp32 accumulators, ldmatrix, cp.async with zero fill. Fragment layouts (PTX ISA, "mma.m16n8k16"):
//   A (16x16, row): a0 = (r, c..c+1), a1 = (r+8, c..c+1), a2 = (r, c+8..c+9), a3 = (r+8, c+8..c+9)
//   B (16x8, col):  b0 = (k = c..c+1, n = r), b1 = (k = c+8..c+9, n = r)
//   C (16x8):       c0,c1 = (r, c..c+1), c2,c3 = (r+8, c..c+1)
// with r = lane / 4 and c = 2 * (lane % 4).
#include <cuda_bf16.h>

#include <cstdint>

namespace dsa::cuda {

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 b16 matrices; lane i gives the address of row i % 8 of matrix i / 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem_addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
}

// 16-byte global -> shared copy; when `valid` is false nothing is read and the 16 bytes are zeroed (so rows
// past the end of a partial page are zeros, never whatever the pool held: 0 * NaN would poison P.V).
__device__ __forceinline__ void cp_async_16(uint32_t smem_addr, const void* gmem, bool valid) {
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(gmem),
                 "r"(src_bytes));
}

// The same copy with every byte valid.
__device__ __forceinline__ void cp_async_16(uint32_t smem_addr, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr), "l"(gmem));
}

// A 4-byte global -> shared copy (through L1: the .cg form takes 16-byte copies only).
__device__ __forceinline__ void cp_async_4(uint32_t smem_addr, const void* gmem) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Two fp32 values as one bf16x2 register: `lo` in the low half (the lower column index).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

// The A fragments of a 16-row tile over K16 steps of 16 columns (mma m16n8k16): lane (r0, c0) = (lane / 4,
// 2 (lane % 4)) holds rows r0 and r0 + 8 at columns c0 and c0 + 8 of each step, as bf16 pairs that
// ld(row, column) returns (a uint32 load from a row-major source, zero for rows past the tile's end).
template <int K16, typename Load>
__device__ __forceinline__ void load_a_fragments(uint32_t (&a)[K16][4], int r0, int c0, Load ld) {
#pragma unroll
    for (int kk = 0; kk < K16; ++kk) {
        a[kk][0] = ld(r0, kk * 16 + c0);
        a[kk][1] = ld(r0 + 8, kk * 16 + c0);
        a[kk][2] = ld(r0, kk * 16 + c0 + 8);
        a[kk][3] = ld(r0 + 8, kk * 16 + c0 + 8);
    }
}

// Row stride (in elements) of a [rows][D] bf16 tile in shared memory: one 16-byte chunk of padding per row.
// D is a multiple of 16, so a row is an even number of chunks and the padded stride an odd one: the 8 rows
// that one ldmatrix reads at the same column land in 8 different 16-byte bank groups (no conflicts).
template <int D>
constexpr int smem_stride() {
    return D + 8;
}

}  // namespace dsa::cuda
