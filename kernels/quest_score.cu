// Quest page bounds (Tang et al., ICML 2024): s_h(j) = sum_i max(q_h,i * kmin_j,i, q_h,i * kmax_j,i), an
// upper bound of q_h . k over the keys of page j, from the page's bf16 min/max row (page_scores.h).
//
// As a matrix product: kmin <= kmax, so the max takes kmax where q_h,i >= 0 and kmin where it is negative:
//   s_h(j) = sum_i min(q_h,i, 0) * kmin_j,i + max(q_h,i, 0) * kmax_j,i = M_j . Q'_h
// with M_j = [kmin_j, kmax_j], the page's stored 2D-element row, and Q'_h = [min(q_h, 0), max(q_h, 0)], exact
// in bf16. So the scores of 16 pages x 8 heads are one tensor-core tile (mma m16n8k16, bf16 products exact in
// fp32, fp32 sums): a warp scores 16 pages with 2D / 16 mma, where the scalar form took 4 instructions per
// (page, head, dim) and was instruction-bound (24 us per layer at 128K against the 7.9 us of its bytes).
//
// Memory: one [2][D] bf16 row per (page, KV head) is the whole read, 4 D bytes (512 B at D = 128) against
// 2 P D bytes of the page's K/V (8 KB at P = 16). The A fragments are loaded straight from global memory:
// the sum over the 2D elements may run in any order, so the element order inside a k-step is chosen to make
// each load 16 contiguous bytes. Lane (r, t) (r = lane / 4, t = lane % 4) loads elements [32 c + 8 t, +8) of
// pages r and r + 8 for each 32-element chunk c; the first four are its A values of k-step 2 c, the last four
// those of k-step 2 c + 1, and its Q' (B) values are the same elements of head r. A warp's load instruction
// reads 64 contiguous bytes of each of 8 rows: every sector it touches is used whole.
//
// Output: per-head rows, or (ScoreRows::GroupSum / GroupMax) each page's group reduction, the heads taken
// from head 0 by shuffles within the lane quad that holds them, written once per page: 1/G of the bytes, and
// the selection CTA then reads 32 KB per list instead of 128 KB at 128K (page_select.cu says why that
// counts).
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/page_scores.cuh"

namespace dsa::cuda {

namespace {

using namespace scores;

constexpr int kPagesPerCta = kChunkPages;  // 64: 16 pages (one tile's rows) per warp
static_assert(kPagesPerCta == 16 * kWarps);

// 8 bf16 (16 bytes) with negative values, or positive values, replaced by +0.
__device__ __forceinline__ uint4 keep_sign(uint4 v, bool negative) {
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint32_t neg = ((w[i] >> 15) & 0x00010001u) * 0xffffu;  // 0xffff in each half with its sign set
        w[i] &= negative ? neg : ~neg;
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}

// NT tiles of 8 query heads (G <= 8 NT). Grid (chunks of 64 pages, n_kv_heads, n_seq), 4 warps.
// The page ids and bounds are read before the wait on the previous kernel (the rule in launch.h): the
// scored pages exclude the sequence's current one, the only page whose bounds the step updates, and the
// tables and lengths come from the host. Only the queries wait.
template <int D, int NT>
__global__ void __launch_bounds__(kThreads) quest_score_kernel(const PageScoreParams p) {
    constexpr int kChunks = 2 * D / 32;  // 32-element chunks of a [kmin, kmax] row
    static_assert(D % 16 == 0 && kChunks >= 1);
    __shared__ float
        sc[kMaxGroup * kPagesPerCta];  // [G][items]: the chunk's scores, for the softmax partials
    const Chunk c = chunk_of(p, kPagesPerCta, false);
    if (c.first >= c.end) return;  // writes nothing: needs no wait

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 4, t = lane % 4;
    // Every load below is unconditional (indices clamped into range, the values masked afterwards), so the
    // compiler issues all of them before the first use: with the loads behind branches it kept one chunk in
    // flight at a time (36 registers at D = 128) and the kernel waited on each (ncu: 85% long-scoreboard
    // stalls, 15.1 us at 128K).
    const int32_t* table = p.block_tables + c.s * p.table_stride;
    const int j0 = c.first + warp * 16 + r, j1 = j0 + 8;  // this lane's two pages (tile rows r, r + 8)
    const int page0 = table[min(j0, c.end - 1)], page1 = table[min(j1, c.end - 1)];

    // A: the lane's 16-byte pieces of its two pages' rows.
    uint4 a0[kChunks], a1[kChunks];
    const uint16_t* row0 = p.kminmax + (static_cast<size_t>(page0) * p.n_kv_heads + c.kvh) * 2 * D;
    const uint16_t* row1 = p.kminmax + (static_cast<size_t>(page1) * p.n_kv_heads + c.kvh) * 2 * D;
#pragma unroll
    for (int ch = 0; ch < kChunks; ++ch) {
        a0[ch] = *reinterpret_cast<const uint4*>(row0 + 32 * ch + 8 * t);
        a1[ch] = *reinterpret_cast<const uint4*>(row1 + 32 * ch + 8 * t);
    }
    pdl_begin();  // the queries are the previous kernel's output

    // B: Q' of head 8 n + r at the lane's elements, one uint4 per chunk (zero for heads past the group).
    uint4 qb[NT][kChunks];
    const uint16_t* q = p.q + (static_cast<size_t>(c.s) * p.n_heads + static_cast<size_t>(c.kvh) * c.G) * D;
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int ch = 0; ch < kChunks; ++ch) {
            const int e = 32 * ch + 8 * t;  // element of the row; < D: the kmin half
            qb[n][ch] =
                *reinterpret_cast<const uint4*>(q + min(8 * n + r, c.G - 1) * D + (e < D ? e : e - D));
        }

#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int ch = 0; ch < kChunks; ++ch)
            qb[n][ch] = 8 * n + r < c.G ? keep_sign(qb[n][ch], 32 * ch + 8 * t < D) : make_uint4(0, 0, 0, 0);

    float acc[NT][4];  // tile n: (page r, heads 8n + 2t, 8n + 2t + 1), (page r + 8, the same heads)
#pragma unroll
    for (int n = 0; n < NT; ++n) {
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
        for (int ch = 0; ch < kChunks; ++ch) {
            const uint32_t first[4] = {a0[ch].x, a1[ch].x, a0[ch].y, a1[ch].y};   // k-step 2 ch
            const uint32_t second[4] = {a0[ch].z, a1[ch].z, a0[ch].w, a1[ch].w};  // k-step 2 ch + 1
            mma_bf16_16816(acc[n], first, qb[n][ch].x, qb[n][ch].y);
            mma_bf16_16816(acc[n], second, qb[n][ch].z, qb[n][ch].w);
        }
    }
    if (p.rows == ScoreRows::PerHead) {
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int h = 8 * n + 2 * t + (i & 1), j = i < 2 ? j0 : j1;
                if (h < c.G && j < c.end) {
                    score_row(p, c, h)[j] = acc[n][i];
                    sc[h * kPagesPerCta + j - c.first] = acc[n][i];
                }
            }
    } else {
        // The group's heads in order from head 0: head h is element h & 1 (page r) or 2 + (h & 1) (page
        // r + 8) of tile h / 8 in quad lane (h % 8) / 2.
        const bool sum = p.rows == ScoreRows::GroupSum;
        float g0 = 0.0f, g1 = 0.0f;
#pragma unroll
        for (int h = 0; h < 8 * NT; ++h) {
            if (h >= c.G) break;
            const int src = (lane & ~3) + (h % 8) / 2;
            const float v0 = __shfl_sync(0xffffffffu, acc[h / 8][h & 1], src);
            const float v1 = __shfl_sync(0xffffffffu, acc[h / 8][2 + (h & 1)], src);
            g0 = sum ? g0 + v0 : h == 0 ? v0 : fmaxf(g0, v0);
            g1 = sum ? g1 + v1 : h == 0 ? v1 : fmaxf(g1, v1);
        }
        if (t == 0) {
            if (j0 < c.end) score_row(p, c, 0)[j0] = g0;
            if (j1 < c.end) score_row(p, c, 0)[j1] = g1;
        }
    }
    if (p.chunk_max) write_chunk_softmax(p, c, sc, kPagesPerCta);
}

}  // namespace

int score_chunk_items(bool tokens) {
    return tokens ? kChunkTokens : kChunkPages;
}

void quest_score(const PageScoreParams& p, cudaStream_t stream) {
    if (p.n_seq == 0 || p.max_items <= 0) return;
    const dim3 grid = score_grid(p, kPagesPerCta, "quest_score");
    const bool two_tiles = p.n_heads / p.n_kv_heads > 8;
    DSA_DISPATCH_HEAD_DIM(p.head_dim, {
        if (two_tiles)
            launch_kernel_as(true, quest_score_kernel<D, 2>, grid, dim3(kThreads), 0, stream, p);
        else
            launch_kernel_as(true, quest_score_kernel<D, 1>, grid, dim3(kThreads), 0, stream, p);
    });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
