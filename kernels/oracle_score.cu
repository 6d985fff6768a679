// The oracle's exact scores s_h(t) = q_h . k_t over every cached key (page_scores.h): it reads all of K, so
// it costs as much as full attention's K reads; it is the quality ceiling of a token budget, not a fast path.
// LP = D / 8 lanes per key (16 bytes each), kBatch keys in flight per lane group.
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/page_scores.cuh"

namespace dsa::cuda {

namespace {

using namespace scores;

constexpr int kTokensPerCta = kChunkTokens;
constexpr int kBatch = 4;

template <int D>
__global__ void __launch_bounds__(kThreads) oracle_score_kernel(const PageScoreParams p) {
    pdl_begin();
    constexpr int LP = lanes_per_item(D, 8), kPerWarp = 32 / LP;
    __shared__ __align__(16) float sq[kMaxGroup * D];
    __shared__ float
        sc[kMaxGroup * kTokensPerCta];  // [G][items]: the chunk's scores, for the softmax partials
    const Chunk c = chunk_of(p, kTokensPerCta, true);
    if (c.first >= c.end) return;
    load_queries<D>(p, c, sq);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int sub = lane % LP, d0 = sub * 8;
    const bool has_dims = d0 < D;
    const int P = p.page_size;
    const int32_t* table = p.block_tables + c.s * p.table_stride;
    const bf16* pool = reinterpret_cast<const bf16*>(p.k_pool);
    constexpr int kStep = kWarps * kPerWarp * kBatch;
    // The loop bounds are warp-uniform (the reductions shuffle over the whole warp); base is the lane
    // group's.
    for (int wbase = c.first + warp * kPerWarp * kBatch; wbase < c.end; wbase += kStep) {
        const int base = wbase + lane / LP;
        uint4 key[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            const int t = base + b * kPerWarp;
            key[b] = make_uint4(0, 0, 0, 0);
            if (t < c.end && has_dims) {
                const size_t row = (static_cast<size_t>(table[t / P]) * p.n_kv_heads + c.kvh) * P + t % P;
                key[b] = *reinterpret_cast<const uint4*>(pool + row * D + d0);
            }
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            const int t = base + b * kPerWarp;
            float k[8];
            unpack_bf16x8(key[b], k);
            for (int h = 0; h < c.G; ++h) {
                float acc = 0.0f;
                if (has_dims) {
                    const float* q = sq + h * D + d0;
#pragma unroll
                    for (int i = 0; i < 8; ++i) acc += q[i] * k[i];
                }
                acc = group_sum<LP>(acc);
                if (sub == 0 && t < c.end) {
                    score_row(p, c, h)[t] = acc;
                    sc[h * kTokensPerCta + t - c.first] = acc;
                }
            }
        }
    }
    if (p.chunk_max) write_chunk_softmax(p, c, sc, kTokensPerCta);
}

}  // namespace

void oracle_score(const PageScoreParams& p, cudaStream_t stream) {
    if (p.n_seq == 0 || p.max_items <= 0) return;
    const dim3 grid = score_grid(p, kTokensPerCta, "oracle_score");
    DSA_DISPATCH_HEAD_DIM(p.head_dim,
                          { launch_kernel(oracle_score_kernel<D>, grid, dim3(kThreads), 0, stream, p); });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
