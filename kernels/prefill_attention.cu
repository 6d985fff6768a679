#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/prefill_attention.h"

namespace dsa::cuda {

namespace {

constexpr int kBlockN = 64;  // keys per tile

// Shared memory of one CTA: kStages K/V tiles (kStages - 1 loading while one is read), and with kMB = 2 the
// CTA's query rows (kBlockM = 16 kMB kWarps of them).
template <int D, int kWarps, int kMB, int kStages>
constexpr size_t prefill_smem_bytes() {
    const size_t q_rows = kMB == 1 ? 0 : size_t{16} * kMB * kWarps;
    return (size_t{kStages} * 2 * kBlockN + q_rows) * smem_stride<D>() * sizeof(bf16);
}

__device__ __forceinline__ void store_pair(void* out, DType dt, size_t idx, float a, float b) {
    switch (dt) {
        case DType::BF16:
            *reinterpret_cast<__nv_bfloat162*>(static_cast<bf16*>(out) + idx) = __floats2bfloat162_rn(a, b);
            break;
        case DType::F16:
            *reinterpret_cast<__half2*>(static_cast<__half*>(out) + idx) = __floats2half2_rn(a, b);
            break;
        case DType::F32:
            *reinterpret_cast<float2*>(static_cast<float*>(out) + idx) = make_float2(a, b);
            break;
    }
}

// Grid (n_heads, q tiles, n_seq); the q-tile index is reversed so the longest (last) tiles start first.
// K/V tiles of 64 keys are gathered from the pages into shared memory by all threads (cp.async, kStages
// deep) and shared by the kWarps warps; each warp owns kMB blocks of 16 query rows and skips tiles entirely
// in its rows' future.
//
// Why kMB = 2: every K and V fragment a warp reads from shared memory (ldmatrix) feeds one mma per 16 query
// rows it holds. With 16 rows a 64-key tile costs the warp 32 KB of shared-memory reads for 0.52 MFLOP, and
// at 128 B/clk per SM those reads take 2x the tensor cores' time for the same work: the kernel is bound by
// shared-memory bandwidth. With 32 rows the same 32 KB (plus 8 KB of Q fragments, which no longer fit in
// registers next to 2 x 64 accumulators) feed 1.05 MFLOP.
template <int D, int kWarps, int kMB, int kStages, int kSubN>
__global__ void __launch_bounds__(kWarps * 32, kMB == 2 && kWarps == 4 ? 2 : 1)
    prefill_attention_kernel(const PrefillAttentionParams p) {
    pdl_begin();
    constexpr int kThreads = kWarps * 32;
    constexpr int kWarpRows = 16 * kMB;
    constexpr int kBlockM = kWarpRows * kWarps;  // query rows per CTA
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int S = smem_stride<D>();
    constexpr int kTileElems = kBlockN * S;
    bf16* smem = reinterpret_cast<bf16*>(smem_raw);
    bf16* q_smem = smem + kStages * 2 * kTileElems;  // [kBlockM][S], kMB = 2 only
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int h = blockIdx.x, qt = gridDim.y - 1 - blockIdx.y, s = blockIdx.z;
    const int q0 = p.q_start[s], q_len = p.q_start[s + 1] - q0;
    if (qt * kBlockM >= q_len) return;
    const int G = p.n_heads / p.n_kv_heads, kvh = h / G;
    const int P = p.page_size;
    const int pos0 = p.pos_start[s];
    const int kv_end = pos0 + min(q_len, (qt + 1) * kBlockM);
    const int n_kv_tiles = (kv_end + kBlockN - 1) / kBlockN;
    const int32_t* bt = p.block_tables + static_cast<size_t>(s) * p.block_table_stride;
    const bf16* k_pool = reinterpret_cast<const bf16*>(p.k_pool);
    const bf16* v_pool = reinterpret_cast<const bf16*>(p.v_pool);
    const bf16* q = reinterpret_cast<const bf16*>(p.q);

    const int r0 = lane / 4, c0 = 2 * (lane % 4);
    const int mat = lane / 8, mrow = lane % 8;
    const int row0 = qt * kBlockM + warp * kWarpRows;  // the warp's first query row within the sequence
    const int warp_last_pos = pos0 + min(row0 + kWarpRows - 1, q_len - 1);
    const bool warp_active = row0 < q_len;

    // kMB = 1: the warp's Q fragments stay in registers for the whole kernel.
    uint32_t qa_reg[kMB == 1 ? D / 16 : 1][4];
    if constexpr (kMB == 1) {
        load_a_fragments(qa_reg, r0, c0, [&](int r, int c) -> uint32_t {
            const int row = row0 + r;
            return row < q_len ? *reinterpret_cast<const uint32_t*>(
                                     q + (static_cast<size_t>(q0 + row) * p.n_heads + h) * D + c)
                               : 0u;
        });
    } else {  // kMB = 2: the CTA's Q rows into shared memory, in the first cp.async group (zeros past q_len)
        constexpr int kChunks = kBlockM * D / 8;
#pragma unroll
        for (int c = 0; c < kChunks / kThreads; ++c) {
            const int i = threadIdx.x + c * kThreads;
            const int r = i / (D / 8), col = (i % (D / 8)) * 8;
            const int row = qt * kBlockM + r;
            const bool valid = row < q_len;
            const size_t g = valid ? (static_cast<size_t>(q0 + row) * p.n_heads + h) * D + col : 0;
            cp_async_16(smem_u32(q_smem + r * S + col), q + g, valid);
        }
    }

    // Each thread copies kPerThread 16-byte chunks of K and of V per tile. The page ids of its chunks' rows
    // are fetched one tile ahead (page_ids), so the block-table load's latency is hidden behind a tile's math
    // instead of stalling every warp between the barrier and its copies.
    constexpr int kPerThread = kBlockN * D / 8 / kThreads;  // D a multiple of 16: no remainder
    const int page_shift = __ffs(P) - 1;                    // P is a power of two (the host checks)
    int page_ids[kPerThread];
    auto chunk_row = [&](int c) { return (threadIdx.x + c * kThreads) / (D / 8); };
    auto fetch_page_ids = [&](int j) {
#pragma unroll
        for (int c = 0; c < kPerThread; ++c) {
            const int kp = j * kBlockN + chunk_row(c);
            page_ids[c] = kp < kv_end ? bt[kp >> page_shift] : 0;
        }
    };
    auto load_tile = [&](int j, int stage) {  // needs fetch_page_ids(j) first
        bf16* ks = smem + stage * 2 * kTileElems;
        bf16* vs = ks + kTileElems;
#pragma unroll
        for (int c = 0; c < kPerThread; ++c) {
            const int r = chunk_row(c), col = ((threadIdx.x + c * kThreads) % (D / 8)) * 8;
            const int kp = j * kBlockN + r;
            const bool valid = kp < kv_end;
            const size_t g =
                ((static_cast<size_t>(page_ids[c]) * p.n_kv_heads + kvh) * P + (kp & (P - 1))) * D + col;
            cp_async_16(smem_u32(ks + r * S + col), k_pool + (valid ? g : 0), valid);
            cp_async_16(smem_u32(vs + r * S + col), v_pool + (valid ? g : 0), valid);
        }
    };

#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) {
        if (i < n_kv_tiles) {
            fetch_page_ids(i);
            load_tile(i, i);
        }
        cp_async_commit();
    }
    fetch_page_ids(kStages - 1);

    const float scale_log2 = p.scale * 1.4426950408889634f;
    float m[kMB][2], l[kMB][2];
    float o[kMB][D / 8][4];
#pragma unroll
    for (int mb = 0; mb < kMB; ++mb) {
        m[mb][0] = m[mb][1] = -INFINITY;
        l[mb][0] = l[mb][1] = 0.0f;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) o[mb][n][0] = o[mb][n][1] = o[mb][n][2] = o[mb][n][3] = 0.0f;
    }

    for (int j = 0; j < n_kv_tiles; ++j) {
        cp_async_wait<kStages - 2>();
        __syncthreads();  // tile j (and Q) visible to all; every warp is done with the stage refilled below
        const int nx = j + kStages - 1;
        if (nx < n_kv_tiles) {
            load_tile(nx, nx % kStages);
            fetch_page_ids(nx + 1);
        }
        cp_async_commit();
        const int k0 = j * kBlockN;
        if (!warp_active || k0 > warp_last_pos) continue;

        for (int sub = 0; sub < kBlockN / kSubN; ++sub) {  // kSubN keys of the tile at a time
            const int ks0 = k0 + sub * kSubN;
            if (ks0 > warp_last_pos) break;
            const bf16* ks = smem + (j % kStages) * 2 * kTileElems + sub * kSubN * S;
            const bf16* vs = ks + kTileElems;
            float sc[kMB][kSubN / 8][4];
#pragma unroll
            for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
                for (int n = 0; n < kSubN / 8; ++n)
                    sc[mb][n][0] = sc[mb][n][1] = sc[mb][n][2] = sc[mb][n][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
                uint32_t qa[kMB][4];
#pragma unroll
                for (int mb = 0; mb < kMB; ++mb) {
                    if constexpr (kMB == 1) {
#pragma unroll
                        for (int e = 0; e < 4; ++e) qa[mb][e] = qa_reg[kk][e];
                    } else {  // A fragment: matrices (rows 0-7 | 8-15) x (columns 0-7 | 8-15) of the 16x16
                              // block
                        ldmatrix_x4(qa[mb], smem_u32(q_smem +
                                                     (warp * kWarpRows + mb * 16 + (mat & 1) * 8 + mrow) * S +
                                                     kk * 16 + (mat >> 1) * 8));
                    }
                }
#pragma unroll
                for (int np = 0; np < kSubN / 16; ++np) {
                    uint32_t b[4];
                    ldmatrix_x4(
                        b, smem_u32(ks + (np * 16 + (mat >> 1) * 8 + mrow) * S + (2 * kk + (mat & 1)) * 8));
#pragma unroll
                    for (int mb = 0; mb < kMB; ++mb) {
                        mma_bf16_16816(sc[mb][2 * np], qa[mb], b[0], b[1]);
                        mma_bf16_16816(sc[mb][2 * np + 1], qa[mb], b[2], b[3]);
                    }
                }
            }
            uint32_t pa[kMB][kSubN / 16][4];  // P = exp(S - max) as bf16 A fragments of the PV product
#pragma unroll
            for (int mb = 0; mb < kMB; ++mb) {
                const int qp_a = pos0 + row0 + mb * 16 + r0,
                          qp_b = qp_a + 8;  // this thread's two rows' positions
                const bool needs_mask = ks0 + kSubN - 1 > pos0 + row0 + mb * 16;
                // Row maxima of the raw scores (the scale is positive), then p = 2^(s scale log2(e) - m) in
                // one FFMA and the exponential; m is kept in the scaled (log2) domain. The 16 values of each
                // of the thread's two rows are reduced in 4 independent chains (kParts), not one: with 2
                // warps per scheduler a 16-deep chain of dependent FMNMX / FADD is not hidden.
                constexpr int kParts = 4;
                float mxp[2][kParts];
#pragma unroll
                for (int r = 0; r < 2; ++r)
#pragma unroll
                    for (int i = 0; i < kParts; ++i) mxp[r][i] = -INFINITY;
#pragma unroll
                for (int n = 0; n < kSubN / 8; ++n) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        if (needs_mask) {
                            const int kp = ks0 + n * 8 + c0 + (e & 1);
                            if (kp > (e < 2 ? qp_a : qp_b)) sc[mb][n][e] = -INFINITY;
                        }
                        mxp[e >> 1][n % kParts] = fmaxf(mxp[e >> 1][n % kParts], sc[mb][n][e]);
                    }
                }
                float mx[2], base[2], alpha[2], rs[2];
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    mx[r] = fmaxf(fmaxf(mxp[r][0], mxp[r][1]), fmaxf(mxp[r][2], mxp[r][3]));
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
                    const float m_new = fmaxf(m[mb][r], mx[r] * scale_log2);
                    base[r] = m_new == -INFINITY ? 0.0f : m_new;
                    alpha[r] =
                        fast_exp2(m[mb][r] - base[r]);  // exactly 1 when the row's maximum did not change
                    m[mb][r] = m_new;
                }
                float rsp[2][kParts] = {};
#pragma unroll
                for (int n = 0; n < kSubN / 8; ++n) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        sc[mb][n][e] = fast_exp2(fmaf(sc[mb][n][e], scale_log2, -base[e >> 1]));
                        rsp[e >> 1][n % kParts] += sc[mb][n][e];
                    }
                }
#pragma unroll
                for (int r = 0; r < 2; ++r) rs[r] = (rsp[r][0] + rsp[r][1]) + (rsp[r][2] + rsp[r][3]);
                l[mb][0] = l[mb][0] * alpha[0] + rs[0];
                l[mb][1] = l[mb][1] * alpha[1] + rs[1];
                // Past the first tiles a row's maximum rarely moves: rescale the accumulators (64 multiplies
                // per thread and 16-row block) only when some row of the warp's block needs it.
                if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
                    for (int n = 0; n < D / 8; ++n) {
                        o[mb][n][0] *= alpha[0];
                        o[mb][n][1] *= alpha[0];
                        o[mb][n][2] *= alpha[1];
                        o[mb][n][3] *= alpha[1];
                    }
                }
#pragma unroll
                for (int t = 0; t < kSubN / 16; ++t) {
                    pa[mb][t][0] = pack_bf16x2(sc[mb][2 * t][0], sc[mb][2 * t][1]);
                    pa[mb][t][1] = pack_bf16x2(sc[mb][2 * t][2], sc[mb][2 * t][3]);
                    pa[mb][t][2] = pack_bf16x2(sc[mb][2 * t + 1][0], sc[mb][2 * t + 1][1]);
                    pa[mb][t][3] = pack_bf16x2(sc[mb][2 * t + 1][2], sc[mb][2 * t + 1][3]);
                }
            }
#pragma unroll
            for (int t = 0; t < kSubN / 16; ++t) {
#pragma unroll
                for (int n2 = 0; n2 < D / 16; ++n2) {
                    uint32_t b[4];
                    ldmatrix_x4_trans(
                        b, smem_u32(vs + (t * 16 + (mat & 1) * 8 + mrow) * S + (2 * n2 + (mat >> 1)) * 8));
#pragma unroll
                    for (int mb = 0; mb < kMB; ++mb) {
                        mma_bf16_16816(o[mb][2 * n2], pa[mb][t], b[0], b[1]);
                        mma_bf16_16816(o[mb][2 * n2 + 1], pa[mb][t], b[2], b[3]);
                    }
                }
            }
        }
    }
    cp_async_wait<0>();
    if (!warp_active) return;
#pragma unroll
    for (int mb = 0; mb < kMB; ++mb) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            l[mb][r] += __shfl_xor_sync(0xffffffffu, l[mb][r], 1);
            l[mb][r] += __shfl_xor_sync(0xffffffffu, l[mb][r], 2);
        }
        const float inv_a = 1.0f / l[mb][0], inv_b = 1.0f / l[mb][1];
        const int ra = row0 + mb * 16 + r0, rb = ra + 8;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            const int d = n * 8 + c0;
            if (ra < q_len)
                store_pair(p.out, p.out_dtype, (static_cast<size_t>(q0 + ra) * p.n_heads + h) * D + d,
                           o[mb][n][0] * inv_a, o[mb][n][1] * inv_a);
            if (rb < q_len)
                store_pair(p.out, p.out_dtype, (static_cast<size_t>(q0 + rb) * p.n_heads + h) * D + d,
                           o[mb][n][2] * inv_b, o[mb][n][3] * inv_b);
        }
    }
}

template <int D, int kWarps, int kMB, int kStages, int kSubN = kBlockN>
void launch(const PrefillAttentionParams& p, cudaStream_t stream) {
    constexpr size_t smem = prefill_smem_bytes<D, kWarps, kMB, kStages>();
    static const bool attr_set = [] {  // once per instantiation, outside any later graph capture
        CUDA_CHECK(cudaFuncSetAttribute(prefill_attention_kernel<D, kWarps, kMB, kStages, kSubN>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        return true;
    }();
    (void)attr_set;
    constexpr int kBlockM = 16 * kMB * kWarps;
    const dim3 grid(p.n_heads, (p.max_q_len + kBlockM - 1) / kBlockM, p.n_seq);
    launch_kernel(prefill_attention_kernel<D, kWarps, kMB, kStages, kSubN>, grid, dim3(kWarps * 32), smem,
                  stream, p);
}

int g_variant = 7;

}  // namespace

void set_prefill_attention_variant(int variant) {
    if (variant < 0 || variant >= kPrefillAttentionVariants)
        throw std::invalid_argument("prefill attention variant out of range: " + std::to_string(variant));
    g_variant = variant;
}
int prefill_attention_variant() {
    return g_variant;
}

void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream) {
    if (p.n_seq == 0 || p.max_q_len == 0) return;
    if (p.page_size <= 0 || (p.page_size & (p.page_size - 1)) != 0)
        throw std::invalid_argument("prefill_attention: page size must be a power of two, got " +
                                    std::to_string(p.page_size));
    const auto v = p.head_dim == 128 ? p.variant : 0;
    // One variant per line: <D, warps, 16-row blocks per warp, stages, keys per softmax step>.
    // clang-format off
    switch (v) {
        case 1: launch<128, 8, 1, 2>(p, stream); break;
        case 2: launch<128, 4, 1, 3>(p, stream); break;
        case 3: launch<128, 8, 1, 3>(p, stream); break;
        case 4: launch<128, 4, 2, 2>(p, stream); break;
        case 5: launch<128, 4, 2, 3>(p, stream); break;
        case 6: launch<128, 8, 2, 2>(p, stream); break;
        case 7: launch<128, 8, 2, 3>(p, stream); break;
        case 8: launch<128, 8, 2, 2, 32>(p, stream); break;
        case 9: launch<128, 8, 2, 3, 32>(p, stream); break;
        case 10: launch<128, 4, 2, 2, 32>(p, stream); break;
        default: DSA_DISPATCH_HEAD_DIM(p.head_dim, (launch<D, 4, 1, 2>(p, stream))); break;
    }
    // clang-format on
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
