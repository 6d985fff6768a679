#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/head_dim_dispatch.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/prefill_attention.h"

namespace dsa::cuda {

namespace {

constexpr int kBlockN = 64;  // keys per tile

// kWarps warps of 16 query rows each; kStages K/V tiles in shared memory (kStages - 1 loading).
template <int D, int kStages>
constexpr size_t prefill_smem_bytes() {
    return size_t{kStages} * 2 * kBlockN * smem_stride<D>() * sizeof(bf16);
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
// K/V tiles of 64 keys are gathered from the pages into shared memory by all 128 threads (cp.async,
// double-buffered) and shared by the 4 warps; each warp owns 16 query rows and skips tiles entirely in
// its rows' future.
template <int D, int kWarps, int kStages>
__global__ void __launch_bounds__(kWarps * 32) prefill_attention_kernel(const PrefillAttentionParams p) {
    pdl_begin();
    constexpr int kBlockM = 16 * kWarps;  // query rows per CTA
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int S = smem_stride<D>();
    constexpr int kTileElems = kBlockN * S;
    bf16* smem = reinterpret_cast<bf16*>(smem_raw);
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

    const int r0 = lane / 4, c0 = 2 * (lane % 4);
    const int row0 = qt * kBlockM + warp * 16;  // the warp's first query row within the sequence
    const int warp_last_pos = pos0 + min(row0 + 15, q_len - 1);
    const bool warp_active = row0 < q_len;

    uint32_t qa[D / 16][4];
    {
        const bf16* q = reinterpret_cast<const bf16*>(p.q);
        auto ld = [&](int r, int c) -> uint32_t {
            const int row = row0 + r;
            return row < q_len ? *reinterpret_cast<const uint32_t*>(
                                     q + (static_cast<size_t>(q0 + row) * p.n_heads + h) * D + c)
                               : 0u;
        };
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            qa[kk][0] = ld(r0, kk * 16 + c0);
            qa[kk][1] = ld(r0 + 8, kk * 16 + c0);
            qa[kk][2] = ld(r0, kk * 16 + c0 + 8);
            qa[kk][3] = ld(r0 + 8, kk * 16 + c0 + 8);
        }
    }

    auto load_tile = [&](int j, int stage) {
        bf16* ks = smem + stage * 2 * kTileElems;
        bf16* vs = ks + kTileElems;
        constexpr int kChunks = kBlockN * D / 8;  // a multiple of 128 (and 256) since D is a multiple of 16
#pragma unroll
        for (int c = 0; c < kChunks / (kWarps * 32); ++c) {
            const int i = threadIdx.x + c * kWarps * 32;
            const int r = i / (D / 8), col = (i % (D / 8)) * 8;
            const int kp = j * kBlockN + r;
            const bool valid = kp < kv_end;
            size_t g = 0;
            if (valid) g = ((static_cast<size_t>(bt[kp / P]) * p.n_kv_heads + kvh) * P + kp % P) * D + col;
            cp_async_16(smem_u32(ks + r * S + col), k_pool + g, valid);
            cp_async_16(smem_u32(vs + r * S + col), v_pool + g, valid);
        }
    };

#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) {
        if (i < n_kv_tiles) load_tile(i, i);
        cp_async_commit();
    }

    const float scale_log2 = p.scale * 1.4426950408889634f;
    const int mat = lane / 8, mrow = lane % 8;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    const int qp_a = pos0 + row0 + r0, qp_b = qp_a + 8;  // positions of this thread's two rows

    for (int j = 0; j < n_kv_tiles; ++j) {
        cp_async_wait<kStages - 2>();
        __syncthreads();  // tile j visible to all; every warp is done with the stage refilled below
        const int nx = j + kStages - 1;
        if (nx < n_kv_tiles) load_tile(nx, nx % kStages);
        cp_async_commit();
        const int k0 = j * kBlockN;
        if (!warp_active || k0 > warp_last_pos) continue;

        const bf16* ks = smem + (j % kStages) * 2 * kTileElems;
        const bf16* vs = ks + kTileElems;
        float sc[kBlockN / 8][4];
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
            for (int np = 0; np < kBlockN / 16; ++np) {
                uint32_t b[4];
                ldmatrix_x4(b,
                            smem_u32(ks + (np * 16 + (mat >> 1) * 8 + mrow) * S + (2 * kk + (mat & 1)) * 8));
                mma_bf16_16816(sc[2 * np], qa[kk], b[0], b[1]);
                mma_bf16_16816(sc[2 * np + 1], qa[kk], b[2], b[3]);
            }
        }
        const bool needs_mask = k0 + kBlockN - 1 > pos0 + row0;
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float v = sc[n][e] * scale_log2;
                if (needs_mask) {
                    const int kp = k0 + n * 8 + c0 + (e & 1);
                    if (kp > (e < 2 ? qp_a : qp_b)) v = -INFINITY;
                }
                sc[n][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
        }
        float base[2], alpha[2], rs[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            base[r] = mx[r] == -INFINITY ? 0.0f : mx[r];
            alpha[r] = fast_exp2(m[r] - base[r]);
            m[r] = mx[r];
        }
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                sc[n][e] = fast_exp2(sc[n][e] - base[e >> 1]);
                rs[e >> 1] += sc[n][e];
            }
        }
        l[0] = l[0] * alpha[0] + rs[0];
        l[1] = l[1] * alpha[1] + rs[1];
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            o[n][0] *= alpha[0];
            o[n][1] *= alpha[0];
            o[n][2] *= alpha[1];
            o[n][3] *= alpha[1];
        }
#pragma unroll
        for (int t = 0; t < kBlockN / 16; ++t) {
            const uint32_t pa[4] = {pack_bf16x2(sc[2 * t][0], sc[2 * t][1]),
                                    pack_bf16x2(sc[2 * t][2], sc[2 * t][3]),
                                    pack_bf16x2(sc[2 * t + 1][0], sc[2 * t + 1][1]),
                                    pack_bf16x2(sc[2 * t + 1][2], sc[2 * t + 1][3])};
#pragma unroll
            for (int n2 = 0; n2 < D / 16; ++n2) {
                uint32_t b[4];
                ldmatrix_x4_trans(
                    b, smem_u32(vs + (t * 16 + (mat & 1) * 8 + mrow) * S + (2 * n2 + (mat >> 1)) * 8));
                mma_bf16_16816(o[2 * n2], pa, b[0], b[1]);
                mma_bf16_16816(o[2 * n2 + 1], pa, b[2], b[3]);
            }
        }
    }
    cp_async_wait<0>();
    if (!warp_active) return;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    const float inv_a = 1.0f / l[0], inv_b = 1.0f / l[1];
    const int ra = row0 + r0, rb = ra + 8;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        const int d = n * 8 + c0;
        if (ra < q_len)
            store_pair(p.out, p.out_dtype, (static_cast<size_t>(q0 + ra) * p.n_heads + h) * D + d,
                       o[n][0] * inv_a, o[n][1] * inv_a);
        if (rb < q_len)
            store_pair(p.out, p.out_dtype, (static_cast<size_t>(q0 + rb) * p.n_heads + h) * D + d,
                       o[n][2] * inv_b, o[n][3] * inv_b);
    }
}

template <int D, int kWarps, int kStages>
void launch(const PrefillAttentionParams& p, cudaStream_t stream) {
    constexpr size_t smem = prefill_smem_bytes<D, kStages>();
    static const bool attr_set = [] {  // once per instantiation, outside any later graph capture
        CUDA_CHECK(cudaFuncSetAttribute(prefill_attention_kernel<D, kWarps, kStages>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        return true;
    }();
    (void)attr_set;
    const dim3 grid(p.n_heads, (p.max_q_len + 16 * kWarps - 1) / (16 * kWarps), p.n_seq);
    launch_kernel(prefill_attention_kernel<D, kWarps, kStages>, grid, dim3(kWarps * 32), smem, stream, p);
}

}  // namespace

void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream) {
    if (p.n_seq == 0 || p.max_q_len == 0) return;
    if (p.head_dim == 128 && p.variant == 1) {
        launch<128, 8, 2>(p, stream);
    } else if (p.head_dim == 128 && p.variant == 2) {
        launch<128, 4, 3>(p, stream);
    } else if (p.head_dim == 128 && p.variant == 3) {
        launch<128, 8, 3>(p, stream);
    } else {
        DSA_DISPATCH_HEAD_DIM(p.head_dim, launch<D, 4, 2>(p, stream));
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
