#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/decode_attention.h"
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"

namespace dsa::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kStages = 3;  // tiles in flight per warp: 2 loading while 1 is computed
constexpr int kTile = 16;   // tokens per tile: one mma n=16 (two n8 tiles) of scores
// List entries of a split staged in shared memory up front (one coalesced read), so issuing a tile's copy
// never waits on a dependent load of its page id; a split with more entries reads the rest from global.
constexpr int kStagedEntries = 512;

constexpr int kMaxFusedSplits = 256;  // splits one CTA merges

// Row stride (floats) of the warps' partial outputs in shared memory: D + 8 puts the 8 rows a warp's float2
// store covers 32 bytes apart in the banks (four rows per 128-byte wavefront), where a stride of D put all 8
// in the same banks (8 wavefronts per store, 64 stores per lane).
template <int D>
constexpr int merge_stride() {
    return D + 8;
}

template <int D>
constexpr size_t decode_smem_bytes() {
    const size_t pipeline = size_t{kWarps} * kStages * 2 * kTile * smem_stride<D>() * sizeof(bf16);
    const size_t warp_merge =
        size_t{kWarps} * 16 * merge_stride<D>() * sizeof(float) + 2 * kWarps * 16 * sizeof(float);
    return std::max(pipeline, warp_merge);
}

__device__ __forceinline__ void store_one(void* out, DType dt, size_t i, float v) {
    switch (dt) {
        case DType::BF16:
            static_cast<bf16*>(out)[i] = __float2bfloat16_rn(v);
            break;
        case DType::F16:
            static_cast<__half*>(out)[i] = __float2half_rn(v);
            break;
        case DType::F32:
            static_cast<float*>(out)[i] = v;
            break;
    }
}

// The last CTA of a (sequence, KV head, head chunk) to finish merges the active splits' partials into p.out
// and resets the group's counter for the next launch. Thread t owns 4 consecutive dims of a row and loads
// kBatch splits' log-sum-exp and partial output at once (unconditional, clamped loads, all in flight
// together): kBatch = 33 is the split count of one sequence with 8 KV heads on the H200's 132 SMs, so there
// the merge is one L2 round trip (it was three with 16-split batches and the maximum read first: ~0.7 us
// each). The row maximum comes from the loaded values; longer merges rescale their running sums per batch.
// Partials of other CTAs are read with ld.global.cg (L2), since L1 is not coherent across multiprocessors.
template <int D>
__device__ void merge_splits(const DecodeAttentionParams& p, size_t out_row0, int rows, int n_active) {
    constexpr int kCols = D / 4, kBatch = 33;
    for (int idx = threadIdx.x; idx < rows * kCols; idx += blockDim.x) {
        const int r = idx / kCols, c = idx % kCols;
        const float* lse = p.lse_part + (out_row0 + r) * p.n_split;
        const float4* o = reinterpret_cast<const float4*>(p.o_part + (out_row0 + r) * p.n_split * D) + c;
        float m = -INFINITY, den = 0.0f;
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int s0 = 0; s0 < n_active; s0 += kBatch) {
            float l[kBatch];
            float4 v[kBatch];
#pragma unroll
            for (int j = 0; j < kBatch; ++j) {
                const int sj = min(s0 + j, n_active - 1);
                l[j] = __ldcg(lse + sj);
                v[j] = __ldcg(o + static_cast<size_t>(sj) * kCols);
            }
            float mb = m;  // the clamped repeats are copies of the last split: harmless for the maximum
#pragma unroll
            for (int j = 0; j < kBatch; ++j) mb = fmaxf(mb, l[j]);
            if (mb != m) {  // a batch with a larger maximum: what was summed so far is scaled to it
                const float a = m == -INFINITY ? 0.0f : exp2f(m - mb);
                den *= a;
                acc.x *= a;
                acc.y *= a;
                acc.z *= a;
                acc.w *= a;
                m = mb;
            }
#pragma unroll
            for (int j = 0; j < kBatch; ++j) {
                // An all-masked split (lse -inf, its o never written) and the clamped repeats weigh 0:
                // select, not multiply.
                const float w = s0 + j < n_active && l[j] != -INFINITY ? exp2f(l[j] - m) : 0.0f;
                den += w;
                acc.x += w > 0.0f ? w * v[j].x : 0.0f;
                acc.y += w > 0.0f ? w * v[j].y : 0.0f;
                acc.z += w > 0.0f ? w * v[j].z : 0.0f;
                acc.w += w > 0.0f ? w * v[j].w : 0.0f;
            }
        }
        const float inv = den > 0.0f ? 1.0f / den : 0.0f;
        const size_t base = (out_row0 + r) * D + 4 * c;
        store_one(p.out, p.out_dtype, base, acc.x * inv);
        store_one(p.out, p.out_dtype, base + 1, acc.y * inv);
        store_one(p.out, p.out_dtype, base + 2, acc.z * inv);
        store_one(p.out, p.out_dtype, base + 3, acc.w * inv);
    }
}

// The kernel's prologue (length, page ids, the first K/V tiles of pages other than the current one) runs
// before the wait on the previous kernel when the lists are block tables (p.list_len null), copied from the
// host before the step (the rule in launch.h). Launched with programmatic serialisation, a layer's CTAs then
// start streaming K/V while the previous layer's last CTAs still merge (~4-5 us per launch at 32K-128K,
// docs/perf.md). Sparse lists are written by the selection kernel just before: those CTAs read only Q before
// the wait (written by the q/k/v projection, two or more kernels back), so that they become resident and
// load it on the SMs the selection (one CTA per list) leaves idle.
__host__ __device__ inline bool prologue_before_wait(const DecodeAttentionParams& p) {
    return p.list_len == nullptr;
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) decode_attention_kernel(const DecodeAttentionParams p) {
    const bool early = prologue_before_wait(p);  // uniform over the grid
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int S = smem_stride<D>();
    constexpr int kTileElems = kTile * S;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    bf16* wsmem = reinterpret_cast<bf16*>(smem_raw) + warp * kStages * 2 * kTileElems;

    const int G = p.n_heads / p.n_kv_heads;
    const int head_chunks = (G + 15) / 16;
    const int split = blockIdx.x, s = blockIdx.z;
    // The CTA's query heads [head0, head0 + rows) of KV head kvh, and the list they read.
    int kvh, head0, rows, list_index;
    if (p.per_head_lists) {
        head0 = blockIdx.y;
        kvh = head0 / G;
        rows = 1;
        list_index = head0;
    } else {
        const int hc = blockIdx.y % head_chunks;
        kvh = blockIdx.y / head_chunks;
        head0 = kvh * G + hc * 16;
        rows = min(16, G - hc * 16);
        list_index = kvh;
    }
    const size_t out_row0 = static_cast<size_t>(s) * p.n_heads + head0;
    const int r0 = lane / 4, c0 = 2 * (lane % 4);

    // Q of the group's heads as mma A fragments (rows past G are zeros).
    uint32_t qa[D / 16][4];
    auto load_q = [&] {
        const bf16* q = reinterpret_cast<const bf16*>(p.q) + out_row0 * D;
        load_a_fragments(qa, r0, c0, [&](int r, int c) -> uint32_t {
            return r < rows ? *reinterpret_cast<const uint32_t*>(q + static_cast<size_t>(r) * D + c) : 0u;
        });
    };
    if (!early) {
        load_q();
        pdl_begin();
    }

    const int P = p.page_size, tpp = P / kTile;
    const int L = p.seq_len[s];
    const size_t list_off = s * p.list_seq_stride + list_index * p.list_head_stride;
    const int32_t* list = p.page_lists + list_off;
    const int32_t* ranges = p.slot_ranges ? p.slot_ranges + list_off : nullptr;
    const int n_lists = p.per_head_lists ? p.n_heads : p.n_kv_heads;
    const int n_entries = p.list_len ? p.list_len[s * n_lists + list_index] : (L + P - 1) / P;
    const int last_hi = L - (L - 1) / P * P;
    const int n_tiles = n_entries * tpp;
    const int tps = max(p.min_tiles_per_split, (n_tiles + p.n_split - 1) / p.n_split);
    const int t_begin = split * tps, t_end = min(n_tiles, t_begin + tps);
    if (t_begin >= t_end) {
        if (early) pdl_begin();
        if (threadIdx.x < rows) p.lse_part[(out_row0 + threadIdx.x) * p.n_split + split] = -INFINITY;
        return;
    }

    __shared__ int32_t s_page[kStagedEntries];
    __shared__ int32_t s_range[kStagedEntries];
    const int e_first = t_begin / tpp;
    const int n_staged = min(kStagedEntries, (t_end - 1) / tpp + 1 - e_first);
    for (int i = threadIdx.x; i < n_staged; i += blockDim.x) {
        s_page[i] = list[e_first + i];
        if (ranges) s_range[i] = ranges[e_first + i];
    }
    __syncthreads();

    const bf16* k_pool = reinterpret_cast<const bf16*>(p.k_pool);
    const bf16* v_pool = reinterpret_cast<const bf16*>(p.v_pool);

    // Tile t: page entry t / tpp, tokens [sub * 16, sub * 16 + 16) of it; [lo, hi) are the valid rows. tpp is
    // a power of two (decode_attention checks), so the entry and sub-tile are a shift and a mask.
    const int tpp_log2 = __ffs(tpp) - 1;
    auto tile_info = [&](int t, int& page, int& sub, int& lo, int& hi) {
        const int e = t >> tpp_log2;
        const bool staged = e - e_first < n_staged;
        sub = t & (tpp - 1);
        page = staged ? s_page[e - e_first] : list[e];
        int elo = 0, ehi = e == n_entries - 1 ? last_hi : P;
        if (ranges) {
            const int r = staged ? s_range[e - e_first] : ranges[e];
            elo = r & 0xffff;
            ehi = r >> 16;
        }
        lo = max(elo - sub * kTile, 0);
        hi = min(ehi - sub * kTile, kTile);
    };
    // A tile is 16 rows of D bf16, contiguous in the pool: copy j of lane l moves its 16-byte chunk
    // i = l + 32 j, at element 8 i in global memory and at row i / (D / 8), column (i % (D / 8)) * 8 of the
    // padded shared tile. The lane's shared offsets and rows are fixed per j, so they are computed once; a
    // tile with every row valid (all but a list's last, or a range's edges) issues its copies unpredicated.
    // Version 6 spent ~240 integer instructions of ~490 per tile on this and the tile's indices (ncu, 128K).
    constexpr int kCopies = kTile * D / 8 / 32;  // 16-byte copies per lane per K (or V) tile: 8 at D = 128
    uint32_t s_off[kCopies];                     // bytes into a K (or V) tile in shared memory
    int c_row[kCopies];
#pragma unroll
    for (int j = 0; j < kCopies; ++j) {
        const int i = lane + 32 * j;
        c_row[j] = i / (D / 8);
        s_off[j] = (c_row[j] * S + (i % (D / 8)) * 8) * sizeof(bf16);
    }
    const uint32_t wsmem_u32 = smem_u32(wsmem);
    auto load_tile = [&](int t, int stage) {
        int page, sub, lo, hi;
        tile_info(t, page, sub, lo, hi);
        const size_t base =
            ((static_cast<size_t>(page) * p.n_kv_heads + kvh) * P + sub * kTile) * D + lane * 8;
        const bf16* kg = k_pool + base;
        const bf16* vg = v_pool + base;
        const uint32_t ks = wsmem_u32 + stage * 2 * kTileElems * sizeof(bf16);
        const uint32_t vs = ks + kTileElems * sizeof(bf16);
        if (lo == 0 && hi == kTile) {
#pragma unroll
            for (int j = 0; j < kCopies; ++j) {
                cp_async_16(ks + s_off[j], kg + 256 * j);
                cp_async_16(vs + s_off[j], vg + 256 * j);
            }
        } else {
#pragma unroll
            for (int j = 0; j < kCopies; ++j) {
                const bool valid = c_row[j] >= lo && c_row[j] < hi;
                cp_async_16(ks + s_off[j], valid ? kg + 256 * j : kg, valid);
                cp_async_16(vs + s_off[j], valid ? vg + 256 * j : vg, valid);
            }
        }
    };

    // The first kStages - 1 tiles of this warp, one cp.async group each; before the wait only those of
    // pages other than the current one (a prefix, since tiles ascend).
    const int first = t_begin + warp;
    const int n_mine = first < t_end ? (t_end - first + kWarps - 1) / kWarps : 0;
    int issued = 0;
    auto issue_first_tiles = [&](bool current_page_too) {
        for (; issued < kStages - 1; ++issued) {
            const int t = first + issued * kWarps;
            if (issued < n_mine) {
                if (!current_page_too && t / tpp >= n_entries - 1) break;
                load_tile(t, issued);
            }
            cp_async_commit();
        }
    };
    if (early) {
        issue_first_tiles(false);
        pdl_begin();
    }
    issue_first_tiles(true);

    if (early) load_q();

    const float scale_log2 = p.scale * 1.4426950408889634f;
    const int mat = lane / 8, mrow = lane % 8;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

    for (int i = 0; i < n_mine; ++i) {
        cp_async_wait<kStages - 2>();
        __syncwarp();
        const int nx = i + kStages - 1;
        if (nx < n_mine) load_tile(first + nx * kWarps, nx % kStages);
        cp_async_commit();

        int page, sub, lo, hi;
        tile_info(first + i * kWarps, page, sub, lo, hi);
        const bf16* ks = wsmem + (i % kStages) * 2 * kTileElems;
        const bf16* vs = ks + kTileElems;

        // S = Q K^T: [16 heads][16 tokens] as two n8 tiles.
        float sc[2][4] = {};
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t b[4];
            ldmatrix_x4(b, smem_u32(ks + ((mat >> 1) * 8 + mrow) * S + (2 * kk + (mat & 1)) * 8));
            mma_bf16_16816(sc[0], qa[kk], b[0], b[1]);
            mma_bf16_16816(sc[1], qa[kk], b[2], b[3]);
        }
        // Online softmax in base 2; each row is spread over the 4 lanes of a quad.
        // Tokens outside [lo, hi) score -inf; a full tile (every tile but a list's last or a range's edges)
        // has none.
        const bool full = lo == 0 && hi == kTile;  // uniform over the warp
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int col = j * 8 + c0 + (e & 1);
                float v = sc[j][e] * scale_log2;
                if (!full && (col < lo || col >= hi)) v = -INFINITY;
                sc[j][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
        }
        float base[2], alpha[2], rs[2] = {0.0f, 0.0f};
        bool rescale = false;  // some row's O is non-zero and its maximum moved
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            base[r] = mx[r] == -INFINITY ? 0.0f : mx[r];  // a row with nothing valid yet stays at zero weight
            alpha[r] = fast_exp2(m[r] - base[r]);
            rescale |= m[r] != -INFINITY && alpha[r] != 1.0f;
            m[r] = mx[r];
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                sc[j][e] = fast_exp2(sc[j][e] - base[e >> 1]);
                rs[e >> 1] += sc[j][e];
            }
        }
        l[0] = l[0] * alpha[0] + rs[0];
        l[1] = l[1] * alpha[1] + rs[1];
        // O of a row whose maximum did not move is scaled by exp2(0) = 1, and O of a row with nothing valid
        // yet is zero: the 64 multiplies per lane are skipped unless some row of the warp needs them (after
        // the first tiles, rarely: the running maximum of n scores moves ~ln n times).
        if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
            for (int n = 0; n < D / 8; ++n) {
                o[n][0] *= alpha[0];
                o[n][1] *= alpha[0];
                o[n][2] *= alpha[1];
                o[n][3] *= alpha[1];
            }
        }
        // O += P V; P's accumulator layout is the A fragment of a k=16 mma.
        const uint32_t pa[4] = {pack_bf16x2(sc[0][0], sc[0][1]), pack_bf16x2(sc[0][2], sc[0][3]),
                                pack_bf16x2(sc[1][0], sc[1][1]), pack_bf16x2(sc[1][2], sc[1][3])};
#pragma unroll
        for (int n2 = 0; n2 < D / 16; ++n2) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, smem_u32(vs + ((mat & 1) * 8 + mrow) * S + (2 * n2 + (mat >> 1)) * 8));
            mma_bf16_16816(o[2 * n2], pa, b[0], b[1]);
            mma_bf16_16816(o[2 * n2 + 1], pa, b[2], b[3]);
        }
    }
    cp_async_wait<0>();
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }

    // Merge the warps: each leaves (m, l, unnormalised O) for its rows in shared memory.
    __syncthreads();
    constexpr int SO = merge_stride<D>();
    float* so = reinterpret_cast<float*>(smem_raw);  // [kWarps][16][SO]
    float* sm = so + kWarps * 16 * SO;               // [kWarps][16]
    float* sl = sm + kWarps * 16;                    // [kWarps][16]
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        float* row_a = so + (warp * 16 + r0) * SO + n * 8 + c0;
        *reinterpret_cast<float2*>(row_a) = make_float2(o[n][0], o[n][1]);
        *reinterpret_cast<float2*>(row_a + 8 * SO) = make_float2(o[n][2], o[n][3]);
    }
    if (lane % 4 == 0) {
        sm[warp * 16 + r0] = m[0];
        sm[warp * 16 + r0 + 8] = m[1];
        sl[warp * 16 + r0] = l[0];
        sl[warp * 16 + r0 + 8] = l[1];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x) {
        const int r = idx / D, d = idx % D;
        float mm = -INFINITY;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, sm[w * 16 + r]);
        const size_t out = (out_row0 + r) * p.n_split + split;
        if (mm == -INFINITY) {  // no valid token in this split for this row
            if (d == 0) p.lse_part[out] = -INFINITY;
            continue;
        }
        float num = 0.0f, den = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            const float mw = sm[w * 16 + r];
            if (mw == -INFINITY) continue;
            const float wt = exp2f(mw - mm);
            num += wt * so[(w * 16 + r) * SO + d];
            den += wt * sl[w * 16 + r];
        }
        p.o_part[out * D + d] = num / den;
        if (d == 0) p.lse_part[out] = mm + log2f(den);
    }
    if (p.out == nullptr) return;

    __shared__ int s_last;
    __threadfence();  // this CTA's partials are visible device-wide before it is counted
    __syncthreads();
    const int n_active = (n_tiles + tps - 1) / tps;
    int* counter = p.counters + static_cast<size_t>(s) * gridDim.y + blockIdx.y;
    if (threadIdx.x == 0) {
        s_last = atomicAdd(counter, 1) == n_active - 1;
        if (s_last) *counter = 0;  // every active CTA has arrived: ready for the next launch
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    merge_splits<D>(p, out_row0, rows, n_active);
}

}  // namespace

int decode_attention_splits(int n_seq, int n_heads, int n_kv_heads, int sm_count) {
    const int head_chunks = (n_heads / n_kv_heads + 15) / 16;
    const int groups = std::max(1, n_seq * n_kv_heads * head_chunks);
    return std::clamp((2 * sm_count + groups - 1) / groups, 1, kMaxFusedSplits);
}

void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream) {
    if (p.n_seq == 0) return;
    if (p.out != nullptr && (p.counters == nullptr || p.n_split > kMaxFusedSplits))
        throw_error("CUDA decode attention: the fused merge needs counters and at most " +
                    std::to_string(kMaxFusedSplits) + " splits, got " + std::to_string(p.n_split));
    const int tpp = p.page_size / kTile;
    if (p.page_size % kTile != 0 || (tpp & (tpp - 1)) != 0)
        throw_error("CUDA decode attention: page size " + std::to_string(p.page_size) +
                    " is not 16 times a power of two");
    const int head_chunks = (p.n_heads / p.n_kv_heads + 15) / 16;
    const dim3 grid(p.n_split, p.per_head_lists ? p.n_heads : p.n_kv_heads * head_chunks, p.n_seq);
    DSA_DISPATCH_HEAD_DIM(p.head_dim, {
        constexpr size_t smem = decode_smem_bytes<D>();
        static const bool attr_set = [] {  // once per head dim, outside any later graph capture
            CUDA_CHECK(cudaFuncSetAttribute(decode_attention_kernel<D>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(smem)));
            return true;
        }();
        (void)attr_set;
        launch_kernel_as(true, decode_attention_kernel<D>, grid, dim3(kWarps * 32), smem, stream, p);
    });
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
