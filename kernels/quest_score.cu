// Quest page bounds (Tang et al., ICML 2024): s_h(j) = sum_i max(q_h,i * kmin_j,i, q_h,i * kmax_j,i), an
// upper bound of q_h . k over the keys of page j, from the page's bf16 min/max row (page_scores.h).
//
// Memory: one [2][D] bf16 row per (page, KV head) is the whole read, 4 D bytes (512 B at D = 128) against
// 2 P D bytes of the page's K/V (8 KB at P = 16): 1/16 of full attention's bytes at P = 16. A lane reads 16
// bytes of kmin and the 16 bytes of kmax at the same dims; LP = D / 8 lanes per page (16 at D = 128), so a
// warp reads two pages per load instruction.
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/page_scores.cuh"

namespace dsa::cuda {

namespace {

using namespace scores;

constexpr int kPagesPerCta = kChunkPages;

// One round of loads covers the CTA's 64 pages (kBatch per lane group: 8 at D = 128, 32 KB in flight per
// CTA), and the page ids are requested before the queries are staged, so a CTA waits on two dependent
// memory round trips (page ids, then bounds) instead of five (queries, then ids and bounds twice).
template <int D>
__global__ void __launch_bounds__(kThreads) quest_score_kernel(const PageScoreParams p) {
    pdl_begin();
    constexpr int LP = lanes_per_item(D, 8), kPerWarp = 32 / LP;
    constexpr int kBatch = kPagesPerCta / (kWarps * kPerWarp);
    static_assert(kBatch >= 1 && kBatch * kWarps * kPerWarp == kPagesPerCta);
    __shared__ __align__(16) float sq[kMaxGroup * D];
    __shared__ float
        sc[kMaxGroup * kPagesPerCta];  // [G][items]: the chunk's scores, for the softmax partials
    const Chunk c = chunk_of(p, kPagesPerCta, false);
    if (c.first >= c.end) return;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int sub = lane % LP, d0 = sub * 8;
    const bool has_dims = d0 < D;  // D = 48: 8 lanes per page, the last 2 idle
    const int32_t* table = p.block_tables + c.s * p.table_stride;
    const int base = c.first + warp * kPerWarp * kBatch + lane / LP;  // the lane group's first page
    int page[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
        const int j = base + b * kPerWarp;
        page[b] = j < c.end && has_dims ? table[j] : -1;
    }
    load_queries<D>(p, c, sq);

    uint4 mn[kBatch], mx[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
        mn[b] = mx[b] = make_uint4(0, 0, 0, 0);
        if (page[b] >= 0) {
            const uint16_t* row = p.kminmax + (static_cast<size_t>(page[b]) * p.n_kv_heads + c.kvh) * 2 * D;
            mn[b] = *reinterpret_cast<const uint4*>(row + d0);
            mx[b] = *reinterpret_cast<const uint4*>(row + D + d0);
        }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
        const int j = base + b * kPerWarp;
        float lo[8], hi[8];
        unpack_bf16x8(mn[b], lo);
        unpack_bf16x8(mx[b], hi);
        for (int h = 0; h < c.G; ++h) {
            float acc = 0.0f;
            if (has_dims) {
                const float* q = sq + h * D + d0;
#pragma unroll
                for (int i = 0; i < 8; ++i) acc += fmaxf(q[i] * lo[i], q[i] * hi[i]);
            }
            acc = group_sum<LP>(acc);
            if (sub == 0 && j < c.end) {
                score_row(p, c, h)[j] = acc;
                sc[h * kPagesPerCta + j - c.first] = acc;
            }
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
    DSA_DISPATCH_HEAD_DIM(p.head_dim,
                          { launch_kernel(quest_score_kernel<D>, grid, dim3(kThreads), 0, stream, p); });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
