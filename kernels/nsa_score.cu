// NSA-style block importance without NSA's learned compression (training-free): the compressed key of a page
// is its mean key, s_h(j) = q_h . (ksum_j / count_j) (page_scores.h); page_select turns the group's scores
// into a summed softmax over the pages.
//
// Memory: one [D] fp32 row of key sums and a count per (page, KV head), 4 D + 4 bytes (516 B at D = 128),
// against 2 P D bytes of K/V (32 KB at NSA's P = 64): 1.6% of full attention's bytes. A lane reads 4 sums
// (16 bytes); LP = D / 4 lanes per page (a whole warp at D = 128).
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/page_scores.cuh"

namespace dsa::cuda {

namespace {

using namespace scores;

constexpr int kPagesPerCta = kChunkPages;

// One round of loads covers the CTA's 64 pages (kBatch per lane group: 16 at D = 128, 33 KB in flight per
// CTA), and the page ids are requested before the queries are staged: two dependent memory round trips per
// CTA (page ids, then sums and counts). The loop of 4 pages per round before took 8. Ids, sums and counts
// are read before the wait on the previous kernel (the rule in launch.h): scored pages exclude the current
// one.
template <int D>
__global__ void __launch_bounds__(kThreads) nsa_score_kernel(const PageScoreParams p) {
    constexpr int LP = lanes_per_item(D, 4), kPerWarp = 32 / LP;
    constexpr int kBatch = kPagesPerCta / (kWarps * kPerWarp);
    static_assert(kBatch >= 1 && kBatch * kWarps * kPerWarp == kPagesPerCta);
    __shared__ __align__(16) float sq[kMaxGroup * D];
    __shared__ float
        sc[kMaxGroup * kPagesPerCta];  // [G][items]: the chunk's scores, for the softmax partials
    const Chunk c = chunk_of(p, kPagesPerCta, false);
    if (c.first >= c.end) return;  // writes nothing: needs no wait

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int sub = lane % LP, d0 = sub * 4;
    const bool has_dims = d0 < D;
    const int32_t* table = p.block_tables + c.s * p.table_stride;
    const int base = c.first + warp * kPerWarp * kBatch + lane / LP;  // the lane group's first page
    // Unconditional loads (indices clamped into range, results unused past the items) so that all of them
    // are issued before the first use, as in quest_score.
    int page[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) page[b] = table[min(base + b * kPerWarp, c.end - 1)];
    float4 sum[kBatch];
    int cnt[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
        const size_t mi = static_cast<size_t>(page[b]) * p.n_kv_heads + c.kvh;
        cnt[b] = p.count[mi];
        sum[b] = *reinterpret_cast<const float4*>(p.ksum + mi * D + (has_dims ? d0 : 0));
    }
    pdl_begin();  // the queries are the previous kernel's output
    load_queries<D>(p, c, sq);
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
        const int j = base + b * kPerWarp;
        const float inv = 1.0f / static_cast<float>(cnt[b]);  // as the CPU: q_i * (ksum_i * (1 / count))
        const float k[4] = {sum[b].x * inv, sum[b].y * inv, sum[b].z * inv, sum[b].w * inv};
        for (int h = 0; h < c.G; ++h) {
            float acc = 0.0f;
            if (has_dims) {
                const float* q = sq + h * D + d0;
#pragma unroll
                for (int i = 0; i < 4; ++i) acc += q[i] * k[i];
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

void nsa_score(const PageScoreParams& p, cudaStream_t stream) {
    if (p.n_seq == 0 || p.max_items <= 0) return;
    const dim3 grid = score_grid(p, kPagesPerCta, "nsa_score");
    DSA_DISPATCH_HEAD_DIM(
        p.head_dim, { launch_kernel_as(true, nsa_score_kernel<D>, grid, dim3(kThreads), 0, stream, p); });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
