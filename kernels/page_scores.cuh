#pragma once
// Device half of page_scores.h: what quest_score, nsa_score and oracle_score share. A CTA of kThreads
// threads scores a chunk of items of one (sequence, KV head): its G queries sit in shared memory as fp32, and
// each item (a page's metadata row, or a key) is read by a group of LP lanes, each lane holding one 16-byte
// piece, so a warp reads 32 / LP items per load instruction with every load 16 bytes wide and coalesced.
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/page_scores.h"

namespace dsa::cuda::scores {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxGroup = 16;  // query heads per KV head held in shared memory
constexpr int kChunkPages = 64, kChunkTokens = 256;

// Host: the grid of a score kernel, one CTA per items_per_cta items of each (sequence, KV head) up to
// max_items; throws for groups of more than kMaxGroup query heads.
inline dim3 score_grid(const PageScoreParams& p, int items_per_cta, const char* kernel) {
    if (p.n_heads / p.n_kv_heads > kMaxGroup)
        throw_error(std::string("CUDA ") + kernel + ": at most " + std::to_string(kMaxGroup) +
                    " query heads per KV head");
    return dim3((p.max_items + items_per_cta - 1) / items_per_cta, p.n_kv_heads, p.n_seq);
}

// Lanes per item when each lane holds `per_lane` elements of a D-element row: a power of 2 (the shuffle
// reduction stays inside the group), at most 32.
constexpr int lanes_per_item(int D, int per_lane) {
    int lanes = 1;
    while (lanes * per_lane < D && lanes < 32) lanes *= 2;
    return lanes;
}

// Sum over the LP aligned lanes of a group; every lane of the group gets it.
template <int LP>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
    for (int o = LP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The CTA's coordinates and item range. n_items: of this sequence (pages - 1, or tokens).
struct Chunk {
    int s, kvh, G, first, end;  // items [first, end)
};

__device__ __forceinline__ Chunk chunk_of(const PageScoreParams& p, int items_per_cta, bool tokens) {
    Chunk c;
    c.s = blockIdx.z;
    c.kvh = blockIdx.y;
    c.G = p.n_heads / p.n_kv_heads;
    const int n = p.seq_len[c.s];
    const int n_items = tokens ? n : (n + p.page_size - 1) / p.page_size - 1;
    c.first = blockIdx.x * items_per_cta;
    c.end = min(n_items, c.first + items_per_cta);
    return c;
}

// sq[h][d] = q of the group's head h, as fp32. [G][D]; ends with a barrier.
template <int D>
__device__ __forceinline__ void load_queries(const PageScoreParams& p, const Chunk& c, float* sq) {
    const bf16* q = reinterpret_cast<const bf16*>(p.q) +
                    (static_cast<size_t>(c.s) * p.n_heads + static_cast<size_t>(c.kvh) * c.G) * D;
    for (int i = threadIdx.x; i < c.G * D; i += blockDim.x) sq[i] = __bfloat162float(q[i]);
    __syncthreads();
}

// The 8 bf16 of a 16-byte piece as fp32.
__device__ __forceinline__ void unpack_bf16x8(const uint4& v, float (&f)[8]) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

// Row of (s, head, item) in the scores output.
__device__ __forceinline__ float* score_row(const PageScoreParams& p, const Chunk& c, int h) {
    return p.scores +
           (static_cast<size_t>(c.s) * p.n_heads + static_cast<size_t>(c.kvh) * c.G + h) * p.score_stride;
}

// With chunk_max set: the CTA's scores also go to sc [G][items_per_cta] (index j - first) on the way out;
// this writes each head's chunk max and sum of exponentials from them. Call after the scoring loop.
__device__ __forceinline__ void write_chunk_softmax(const PageScoreParams& p, const Chunk& c, const float* sc,
                                                    int items_per_cta) {
    __syncthreads();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, n = c.end - c.first;
    for (int h = warp; h < c.G; h += kWarps) {
        const float* row = sc + h * items_per_cta;
        float m = -INFINITY;
        for (int i = lane; i < n; i += 32) m = fmaxf(m, row[i] * p.softmax_scale);
        m = warp_max(m);
        float z = 0.0f;
        for (int i = lane; i < n; i += 32) z += expf(row[i] * p.softmax_scale - m);
        z = warp_sum(z);
        if (lane == 0) {
            const size_t at = (static_cast<size_t>(c.s) * p.n_heads + static_cast<size_t>(c.kvh) * c.G + h) *
                                  p.chunk_stride +
                              blockIdx.x;
            p.chunk_max[at] = m;
            p.chunk_sum[at] = z;
        }
    }
}

}  // namespace dsa::cuda::scores
