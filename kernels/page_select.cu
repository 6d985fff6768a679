// Top-k selection and page-list construction on the device (page_select.h), one CTA per list.
//
// Top-k: a radix select over the reduced scores mapped to ordered uint32 keys (larger key = better; NaN as
// -inf, -0 as +0, forced items 0 so they never compete). The bits that every eligible key shares are skipped
// (a block AND/OR), then 8-bit digits from the highest differing bit down, each pass a shared-memory
// histogram of the keys still matching the digits chosen so far (warp-aggregated atomics: scores of one
// magnitude share their top digits), find the k-th largest key T. Keys above T are taken, and of those
// equal to T the lowest indices, which is the CPU's total order (attention/top_k.cpp) exactly. A pass whose
// bin holds exactly the keys still needed ends the search early; the ordered scan for ties runs only when
// keys equal to T are left over.
//
// Cost (Llama-3.1-8B shape, 128K context, P = 16): 8191 pages and 4 query heads per list: the 128 KB of
// per-head scores are read once, coalesced, from L2 (the softmax normalisers come from the score kernel's
// per-chunk partials); the 32 KB of keys stay in shared memory for the radix passes; the list it writes is
// at most 64 KB.
#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"
#include "kernels/page_select.h"

namespace dsa::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxListHeads = 16;           // query heads reduced into one list (G)
constexpr size_t kMaxSmemKeys = 40 * 1024;  // keys kept in shared memory (160 KB)
constexpr int kKeyRounds = 8;               // rounds of items whose score loads are in flight together

__device__ __forceinline__ uint32_t order_key(float f) {
    if (isnan(f)) f = -INFINITY;
    if (f == 0.0f) f = 0.0f;  // -0 and +0 tie, as in a float comparison
    const uint32_t b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // every real score maps to >= 0x007fffff > 0
}

// Exclusive prefix sum of v over the block in thread order; *total gets the block's sum.
__device__ int block_exclusive_scan(int v, int* total, int* s_warp) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) s_warp[warp] = x;
    __syncthreads();
    if (warp == 0) {
        int w = s_warp[lane];
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const int y = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += y;
        }
        s_warp[lane] = w;  // inclusive
    }
    __syncthreads();
    const int before = warp > 0 ? s_warp[warp - 1] : 0;
    *total = s_warp[kWarps - 1];
    __syncthreads();  // s_warp is free for the next call
    return before + x - v;
}

// AND and OR of v over the block, into s_and / s_or (shared). s_tmp: [2][kWarps].
__device__ void block_and_or(uint32_t v_and, uint32_t v_or, uint32_t* s_tmp, uint32_t* s_and,
                             uint32_t* s_or) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v_and = __reduce_and_sync(0xffffffffu, v_and);
    v_or = __reduce_or_sync(0xffffffffu, v_or);
    if (lane == 0) {
        s_tmp[warp] = v_and;
        s_tmp[kWarps + warp] = v_or;
    }
    __syncthreads();
    if (warp == 0) {
        const uint32_t a = __reduce_and_sync(0xffffffffu, s_tmp[lane]);
        const uint32_t o = __reduce_or_sync(0xffffffffu, s_tmp[kWarps + lane]);
        if (lane == 0) {
            *s_and = a;
            *s_or = o;
        }
    }
    __syncthreads();
}

__global__ void __launch_bounds__(kThreads)
    page_select_kernel(const PageSelectParams p, int bits_words, bool keys_in_smem) {
    pdl_begin();
    extern __shared__ uint32_t smem[];
    uint32_t* s_bits = smem;  // [bits_words] attended items: pages, or tokens
    __shared__ int s_warp[32];
    __shared__ uint32_t s_hist[256], s_tmp[2 * kWarps], s_and, s_or;
    __shared__ int s_pick[3];  // radix digit, keys in higher bins, keys in its bin
    __shared__ float s_max[kMaxListHeads], s_sum[kMaxListHeads];

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int n_lists = gridDim.x, list = blockIdx.x, s = blockIdx.y;
    const int P = p.page_size, n = p.seq_len[s];
    const int n_pages = (n + P - 1) / P;
    const int n_items = p.tokens_are_items ? n : n_pages - 1;
    const int32_t* table = p.block_tables + s * p.table_stride;
    const size_t li = static_cast<size_t>(s) * n_lists + list;
    int32_t* pages_out = p.page_lists + li * p.list_stride;
    int32_t* ranges_out = p.slot_ranges + li * p.list_stride;

    if (n_items <= p.dense_below_or_at) {  // the block table, as full attention reads it
        for (int j = tid; j < n_pages; j += kThreads) {
            pages_out[j] = table[j];
            ranges_out[j] = min(P, n - j * P) << 16;
        }
        if (tid == 0) {
            p.list_len[li] = n_pages;
            if (p.attended) p.attended[li] = n;
        }
        return;
    }

    const int n_bits = p.tokens_are_items ? n : n_pages;
    for (int w = tid; w < (n_bits + 31) / 32; w += kThreads) s_bits[w] = 0;
    __syncthreads();
    auto bit = [&](int i) { return (s_bits[i >> 5] >> (i & 31)) & 1u; };

    // Forced items [0, a) and [b, n_items); k picked among the n_items - n_forced others. Items are
    // visited strided (item i by thread i % kThreads), in warp-uniform rounds so that a warp's 32 items are
    // one word of s_bits and its loads coalesce.
    const int a = min(p.forced_first, n_items), b = max(a, n_items - p.forced_last);
    const int n_forced = a + (n_items - b);
    const int k = max(0, p.select_total - n_forced);
    const bool rank = k > 0 && k < n_items - n_forced;
    const int rounds = (n_items + kThreads - 1) / kThreads;
    uint32_t* keys = keys_in_smem ? smem + bits_words : p.keys + li * p.score_stride;

    uint32_t prefix = 0, mask = 0;
    int k_rem = k;
    bool ties = false;  // keys equal to T remain that only the lower indices may take
    if (rank) {
        const int G = p.n_heads / p.n_kv_heads;
        const int h0 = p.per_head_lists ? list : list * G, nh = p.per_head_lists ? 1 : G;
        const float* rows = p.scores + (static_cast<size_t>(s) * p.n_heads + h0) * p.score_stride;
        const GroupReduce mode = p.per_head_lists ? GroupReduce::Sum : p.reduce;
        const float scale = p.softmax_scale;
        if (mode == GroupReduce::Softmax) {  // combine the chunks' (max, sum) of every head
            const int n_chunks = (n_items + p.chunk_items - 1) / p.chunk_items;
            for (int h = warp; h < nh; h += kWarps) {
                const size_t at = (static_cast<size_t>(s) * p.n_heads + h0 + h) * p.chunk_stride;
                float m = -INFINITY;
                for (int c = lane; c < n_chunks; c += 32) m = fmaxf(m, p.chunk_max[at + c]);
                m = warp_max(m);
                float z = 0.0f;
                for (int c = lane; c < n_chunks; c += 32)
                    z += p.chunk_sum[at + c] * expf(p.chunk_max[at + c] - m);
                z = warp_sum(z);
                if (lane == 0) {
                    s_max[h] = m;
                    s_sum[h] = z;
                }
            }
            __syncthreads();
        }
        // kKeyRounds rounds at a time, each head's loads of them issued together: one CTA must keep many
        // L2 reads in flight to stream the G x n scores (128 KB at 128K context) in a few microseconds.
        uint32_t v_and = 0xffffffffu, v_or = 0;
        for (int r0 = 0; r0 < rounds; r0 += kKeyRounds) {
            float acc[kKeyRounds];
#pragma unroll
            for (int u = 0; u < kKeyRounds; ++u) acc[u] = 0.0f;
            for (int h = 0; h < nh; ++h) {
                float v[kKeyRounds];
#pragma unroll
                for (int u = 0; u < kKeyRounds; ++u) {
                    const int i = (r0 + u) * kThreads + tid;
                    v[u] = i < n_items ? rows[h * p.score_stride + i] : 0.0f;
                }
#pragma unroll
                for (int u = 0; u < kKeyRounds; ++u) {
                    switch (mode) {  // the CPU's order: heads in sequence, from 0 (reduce_group_scores)
                        case GroupReduce::Sum:
                            acc[u] += v[u];
                            break;
                        case GroupReduce::Max:
                            acc[u] = h == 0 ? v[u] : fmaxf(acc[u], v[u]);
                            break;
                        case GroupReduce::Softmax:
                            acc[u] += expf(v[u] * scale - s_max[h]) / s_sum[h];
                            break;
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < kKeyRounds; ++u) {
                const int i = (r0 + u) * kThreads + tid;
                if (i >= n_items) continue;
                const bool forced = i < a || i >= b;
                const uint32_t key = forced ? 0u : order_key(acc[u]);
                keys[i] = key;
                if (!forced) {
                    v_and &= key;
                    v_or |= key;
                }
            }
        }
        block_and_or(v_and, v_or, s_tmp, &s_and, &s_or);

        // Bits [0, hi) differ between eligible keys; the ones above are every eligible key's.
        int hi = 32 - __clz(s_and ^ s_or);
        mask = hi == 32 ? 0u : ~((1u << hi) - 1u);
        prefix = s_and & mask;
        ties = true;
        while (hi > 0) {
            const int lo = max(0, hi - 8);
            const uint32_t dmask = (1u << (hi - lo)) - 1u;
            if (tid < 256) s_hist[tid] = 0;
            __syncthreads();
            for (int r = 0; r < rounds; ++r) {
                const int i = r * kThreads + tid;
                const uint32_t key = i < n_items ? keys[i] : 0u;
                const bool match = i < n_items && (key & mask) == prefix;
                const int bin = match ? static_cast<int>((key >> lo) & dmask) : 256 + lane;
                const unsigned same = __match_any_sync(0xffffffffu, bin);
                if (match && lane == __ffs(same) - 1) atomicAdd(&s_hist[bin], __popc(same));
            }
            __syncthreads();
            if (warp == 0) {  // lane l holds bins 8l .. 8l + 7; find the bin of the k_rem-th largest key
                uint32_t c[8];
                int tot = 0;
#pragma unroll
                for (int j = 0; j < 8; ++j) tot += static_cast<int>(c[j] = s_hist[lane * 8 + j]);
                int above = tot;  // keys in this lane's bins and above, then above only
#pragma unroll
                for (int o = 1; o < 32; o <<= 1) {
                    const int y = __shfl_down_sync(0xffffffffu, above, o);
                    if (lane + o < 32) above += y;
                }
                above -= tot;
#pragma unroll
                for (int j = 7; j >= 0; --j) {
                    const int cj = static_cast<int>(c[j]);
                    if (above < k_rem && above + cj >= k_rem) {
                        s_pick[0] = lane * 8 + j;
                        s_pick[1] = above;
                        s_pick[2] = cj;
                    }
                    above += cj;
                }
            }
            __syncthreads();
            k_rem -= s_pick[1];
            prefix |= static_cast<uint32_t>(s_pick[0]) << lo;
            mask |= dmask << lo;
            hi = lo;
            if (s_pick[2] == k_rem) {
                ties = false;  // every key matching the prefix is taken
                break;
            }
        }
    }

    // Mark: forced, every eligible item when k covers them, else the keys above T (or matching the prefix
    // when the search ended early), then the k_rem lowest-index keys equal to T.
    int taken_eq = 0;  // keys == T taken by earlier rounds (ties only)
    for (int r = 0; r < rounds; ++r) {
        const int i = r * kThreads + tid;
        bool take = false, eq = false;
        if (i < n_items) {
            const bool forced = i < a || i >= b;
            if (forced || (k > 0 && !rank)) {
                take = true;
            } else if (rank) {
                const uint32_t key = keys[i];
                if (!ties) {
                    take = (key & mask) >= prefix;
                } else {
                    take = key > prefix;
                    eq = key == prefix;
                }
            }
        }
        if (ties && __syncthreads_or(eq)) {  // order the equal keys of this round by index
            int total;
            const int before = block_exclusive_scan(eq ? 1 : 0, &total, s_warp);
            if (eq && taken_eq + before < k_rem) take = true;
            taken_eq += total;
        }
        const unsigned word = __ballot_sync(0xffffffffu, take);
        if (lane == 0 && r * kThreads + warp * 32 < n_items) s_bits[(r * kThreads + warp * 32) >> 5] = word;
    }
    __syncthreads();
    if (p.with_current_page && !p.tokens_are_items && tid == 0)
        s_bits[(n_pages - 1) >> 5] |= 1u << ((n_pages - 1) & 31);
    __syncthreads();

    // Runs of attended tokens per page, in page order: count, scan, write.
    auto for_runs = [&](int j, auto&& emit) {
        const int base = j * P, cnt = min(P, n - base);
        if (!p.tokens_are_items) {
            if (bit(j)) {
                emit(0, cnt);
                return;
            }
            const int s_hi = min(cnt, p.sink_tokens - base);      // sinks: [0, s_hi)
            const int w_lo = max(0, n - p.window_tokens - base);  // window: [w_lo, cnt)
            if (s_hi > 0 && w_lo < cnt && w_lo <= s_hi) {
                emit(0, cnt);
                return;
            }
            if (s_hi > 0) emit(0, s_hi);
            if (w_lo < cnt) emit(w_lo, cnt);
            return;
        }
        for (int t = 0; t < cnt;) {
            if (!bit(base + t)) {
                ++t;
                continue;
            }
            int u = t + 1;
            while (u < cnt && bit(base + u)) ++u;
            emit(t, u);
            t = u;
        }
    };
    const int per_page = (n_pages + kThreads - 1) / kThreads;
    const int j0 = min(n_pages, tid * per_page), j1 = min(n_pages, j0 + per_page);
    int n_runs = 0, n_tok = 0;
    for (int j = j0; j < j1; ++j)
        for_runs(j, [&](int lo, int hi) {
            ++n_runs;
            n_tok += hi - lo;
        });
    int total_runs;
    int at = block_exclusive_scan(n_runs, &total_runs, s_warp);
    for (int j = j0; j < j1; ++j)
        for_runs(j, [&](int lo, int hi) {
            pages_out[at] = table[j];
            ranges_out[at] = lo | (hi << 16);
            ++at;
        });
    const float tokens = block_sum(static_cast<float>(n_tok));
    if (tid == 0) {
        p.list_len[li] = total_runs;
        if (p.attended) p.attended[li] = static_cast<int>(tokens + 0.5f);
    }
}

int bits_words(const PageSelectParams& p, int max_tokens) {
    const int max_pages = (max_tokens + p.page_size - 1) / p.page_size;
    return ((p.tokens_are_items ? max_tokens : max_pages) + 31) / 32;
}

}  // namespace

int page_list_capacity(const PageSelectParams& p, int max_tokens) {
    const int max_pages = (max_tokens + p.page_size - 1) / p.page_size;
    return (p.tokens_are_items ? std::max(max_pages, p.select_total) : max_pages) + 1;
}

void page_select(const PageSelectParams& p, int max_tokens, cudaStream_t stream) {
    if (p.n_seq == 0) return;
    const int G = p.n_heads / p.n_kv_heads;
    if (G > kMaxListHeads)
        throw_error("CUDA page_select: at most " + std::to_string(kMaxListHeads) +
                    " query heads per KV head");
    if (p.list_stride < page_list_capacity(p, max_tokens))
        throw_error("CUDA page_select: list stride " + std::to_string(p.list_stride) +
                    " below the capacity " + std::to_string(page_list_capacity(p, max_tokens)));
    const int words = bits_words(p, max_tokens);
    const size_t max_items = static_cast<size_t>(p.score_stride);
    const bool keys_in_smem = p.scores != nullptr && max_items <= kMaxSmemKeys;
    const size_t smem = (static_cast<size_t>(words) + (keys_in_smem ? max_items : 0)) * 4;
    static size_t smem_set = 48 * 1024;  // raised once, before any capture that needs more
    if (smem > smem_set) {
        CUDA_CHECK(cudaFuncSetAttribute(page_select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
        smem_set = smem;
    }
    const int n_lists = p.per_head_lists ? p.n_heads : p.n_kv_heads;
    launch_kernel(page_select_kernel, dim3(n_lists, p.n_seq), dim3(kThreads), smem, stream, p, words,
                  keys_in_smem);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
