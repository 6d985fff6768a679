// Top-k selection and page-list construction on the device (page_select.h): one kernel, one CTA of 1024
// threads per list.
//
// Keys: the group-reduced scores mapped to ordered uint32 keys (larger key = better; NaN as -inf, -0 as +0;
// forced items 0, so they never compete: every real score maps to a key >= 0x007fffff). Thread t holds items
// t, t + 1024, ...: the first kRegRounds of them in registers (8192 items per list, a 128K context at P =
// 16), any beyond in the `keys` scratch (L2).
//
// Threshold: the k-th largest key T, found one bit at a time from the top. T starts as the bits every
// eligible key shares (a block AND and OR); for each lower bit b, T | 1 << b is kept when at least k keys are
// >= it. A step is one count over the block: compares on the thread's keys, a warp reduction, one barrier.
// When exactly k keys are >= the candidate the search stops there: those k are the selection and no key
// straddles it. Otherwise T is exact after bit 0: the keys above T are taken, and of the keys equal to T the
// lowest indices, which is the CPU's total order (attention/top_k.cpp) exactly.
//
// Why a bitwise search: a step costs a barrier and a few instructions per thread (~0.1-0.2 us), and real
// scores end it after about log2(n) steps below their common bits (8192 keys: ~13; on benchmark data whose
// pages repeated, so that the threshold tied, ncu counted ~21 per list at 128K, a third of the kernel's
// 19.9 us). Two bits per step (three counts per barrier) measured slower
// (+3 us per list): the step's cost is its reductions, not only its barrier. The radix version before it (a
// key kernel on 16 CTAs per list building a 12-bit histogram, then 8-bit histogram passes over the threshold
// bin's candidates in one CTA) took 8.1 + 24.5 us per layer at 128K (ncu): its shared-memory histogram
// updates serialise when keys share their top bits, which group-summed Quest bounds do, and its keys made a
// round trip through L2 between the two kernels.
//
// Lists: whole-page policies (quest, nsa without a window) emit one entry per attended page straight from
// the bit words: a scan of their popcounts, then each thread writes its own pages' entries (their block-table
// ids loaded during the marks); sink and window token ranges take the general per-page run walk.
//
// Cost (Llama-3.1-8B shape, 128K context, P = 16): 8191 pages and 4 query heads per list: the 128 KB of
// per-head scores are read once, coalesced, from L2 (the softmax normalisers come from the score kernel's
// per-chunk partials); the list it writes is at most 64 KB.
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
constexpr int kRegRounds = 8;      // items per thread whose keys stay in registers
constexpr int kMaxListHeads = 16;  // query heads reduced into one list (G)

// What one list of one step selects: forced items [0, a) and [b, n_items); k picked among the others when
// `rank` (fewer than all of them), all of them when k covers them.
struct ListPlan {
    int n, n_pages, n_items, a, b, k;
    bool dense, rank;
};

__device__ __forceinline__ ListPlan list_plan(const PageSelectParams& p, int s) {
    ListPlan l;
    const int P = p.page_size;
    l.n = p.seq_len[s];
    l.n_pages = (l.n + P - 1) / P;
    l.n_items = p.tokens_are_items ? l.n : l.n_pages - 1;
    l.dense = l.n_items <= p.dense_below_or_at;
    l.a = min(p.forced_first, l.n_items);
    l.b = max(l.a, l.n_items - p.forced_last);
    const int n_forced = l.a + (l.n_items - l.b);
    l.k = max(0, p.select_total - n_forced);
    l.rank = !l.dense && l.k > 0 && l.k < l.n_items - n_forced;
    return l;
}

__device__ __forceinline__ uint32_t order_key(float f) {
    return ordered_bits(isnan(f) ? -INFINITY : f);  // every real score maps to >= 0x007fffff > 0
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

// Sum of v over the block, for every thread, behind one barrier: the warps' sums go to the half of s_part
// that *parity names, flipped per call, so a call cannot overwrite sums a slower warp still reads from the
// call before (it passed that call's barrier after reading).
__device__ __forceinline__ int block_count(int v, int (*s_part)[kWarps], int* parity) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = __reduce_add_sync(0xffffffffu, v);
    if (lane == 0) s_part[*parity][warp] = v;
    __syncthreads();
    const int total = __reduce_add_sync(0xffffffffu, s_part[*parity][lane]);
    *parity ^= 1;
    return total;
}

// acc of one item after head h's score v, in the CPU's order (reduce_group_scores: from head 0).
__device__ __forceinline__ float reduce_head(GroupReduce mode, int h, float acc, float v, float scale,
                                             float head_max, float head_sum) {
    switch (mode) {
        case GroupReduce::Sum:
            return acc + v;
        case GroupReduce::Max:
            return h == 0 ? v : fmaxf(acc, v);
        case GroupReduce::Softmax:
            return acc + expf(v * scale - head_max) / head_sum;
    }
    return acc;
}

__global__ void __launch_bounds__(kThreads) page_select_kernel(const PageSelectParams p, int bits_words) {
    pdl_begin();
    extern __shared__ uint32_t smem[];
    uint32_t* s_bits = smem;  // [bits_words] attended items: pages, or tokens
    int* s_before = reinterpret_cast<int*>(smem + bits_words);  // [bits_words] set bits in the words before
    __shared__ int s_warp[32];
    __shared__ int s_part[2][kWarps];
    __shared__ uint32_t s_and[kWarps], s_or[kWarps];
    __shared__ float s_max[kMaxListHeads], s_sum[kMaxListHeads];

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int n_lists = gridDim.x, list = blockIdx.x, s = blockIdx.y;
    const int G = p.n_heads / p.n_kv_heads;
    const int h0 = p.per_head_lists ? list : list * G, nh = p.per_head_lists ? 1 : G;
    const float* rows =
        p.scores ? p.scores + (static_cast<size_t>(s) * p.n_heads + h0) * p.score_stride : nullptr;
    // Head 0's scores of the register rounds are requested before the sequence's length is known (a round
    // trip saved); what lies past the items is read but never used.
    float v[kRegRounds];
#pragma unroll
    for (int r = 0; r < kRegRounds; ++r) {
        const int i = r * kThreads + tid;
        v[r] = rows && i < p.score_stride ? rows[i] : 0.0f;
    }
    const ListPlan l = list_plan(p, s);
    const int P = p.page_size, n = l.n, n_pages = l.n_pages, n_items = l.n_items;
    const int32_t* table = p.block_tables + s * p.table_stride;
    const size_t li = static_cast<size_t>(s) * n_lists + list;
    int32_t* pages_out = p.page_lists + li * p.list_stride;
    int32_t* ranges_out = p.slot_ranges + li * p.list_stride;

    if (l.dense) {  // the block table, as full attention reads it
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
    auto bit = [&](int i) { return (s_bits[i >> 5] >> (i & 31)) & 1u; };

    const int a = l.a, b = l.b, k = l.k;
    const bool rank = l.rank;
    const int rounds = (n_items + kThreads - 1) / kThreads;
    uint32_t* keys = p.keys + li * p.score_stride;  // items from kRegRounds * kThreads on
    auto eligible = [&](int i) { return i < n_items && i >= a && i < b; };

    uint32_t key[kRegRounds];  // item r * kThreads + tid; 0 when forced or past the items
#pragma unroll
    for (int r = 0; r < kRegRounds; ++r) key[r] = 0u;
    uint32_t T = 0;     // the threshold key
    bool exact = true;  // the keys >= T are exactly k (no key equal to T is left out)
    int k_rem = 0;      // of the keys equal to T, how many (the lowest indices) are taken
    if (rank) {
        const GroupReduce mode = p.per_head_lists ? GroupReduce::Sum : p.reduce;
        if (mode == GroupReduce::Softmax) {  // each head's max and normaliser from the chunks' partials
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
        auto head_max = [&](int h) { return mode == GroupReduce::Softmax ? s_max[h] : 0.0f; };
        auto head_sum = [&](int h) { return mode == GroupReduce::Softmax ? s_sum[h] : 1.0f; };

        // The register rounds: head h + 1's loads are in flight while head h is reduced.
        float acc[kRegRounds];
#pragma unroll
        for (int r = 0; r < kRegRounds; ++r) acc[r] = 0.0f;
        for (int h = 0; h < nh; ++h) {
            float w[kRegRounds] = {};
            if (h + 1 < nh) {
#pragma unroll
                for (int r = 0; r < kRegRounds; ++r) {
                    const int i = r * kThreads + tid;
                    w[r] = i < n_items ? rows[(h + 1) * p.score_stride + i] : 0.0f;
                }
            }
            const float mh = head_max(h), zh = head_sum(h);
#pragma unroll
            for (int r = 0; r < kRegRounds; ++r) {
                acc[r] = reduce_head(mode, h, acc[r], v[r], p.softmax_scale, mh, zh);
                v[r] = w[r];
            }
        }
#pragma unroll
        for (int r = 0; r < kRegRounds; ++r) key[r] = eligible(r * kThreads + tid) ? order_key(acc[r]) : 0u;
        for (int r = kRegRounds; r < rounds; ++r) {  // beyond the registers: to the scratch
            const int i = r * kThreads + tid;
            if (i >= n_items) continue;
            float x = 0.0f;
            for (int h = 0; h < nh; ++h)
                x = reduce_head(mode, h, x, rows[h * p.score_stride + i], p.softmax_scale, head_max(h),
                                head_sum(h));
            keys[i] = eligible(i) ? order_key(x) : 0u;
        }

        // The bits every eligible key shares (eligible keys are the non-zero ones).
        uint32_t k_and = ~0u, k_or = 0u;
#pragma unroll
        for (int r = 0; r < kRegRounds; ++r) {
            if (key[r]) k_and &= key[r];
            k_or |= key[r];
        }
        for (int r = kRegRounds; r < rounds; ++r) {
            const int i = r * kThreads + tid;
            const uint32_t x = i < n_items ? keys[i] : 0u;
            if (x) k_and &= x;
            k_or |= x;
        }
        k_and = __reduce_and_sync(0xffffffffu, k_and);
        k_or = __reduce_or_sync(0xffffffffu, k_or);
        if (lane == 0) {
            s_and[warp] = k_and;
            s_or[warp] = k_or;
        }
        __syncthreads();
        k_and = __reduce_and_sync(0xffffffffu, s_and[lane]);
        k_or = __reduce_or_sync(0xffffffffu, s_or[lane]);

        int parity = 0;
        auto count_at_least = [&](uint32_t c) {
            int m = 0;
#pragma unroll
            for (int r = 0; r < kRegRounds; ++r) m += key[r] >= c;
            for (int r = kRegRounds; r < rounds; ++r) {
                const int i = r * kThreads + tid;
                if (i < n_items) m += keys[i] >= c;
            }
            return block_count(m, s_part, &parity);
        };
        // Every eligible key (more than k of them) is >= the common bits: the search starts there.
        const uint32_t diff = k_and ^ k_or;
        int top = diff ? 31 - __clz(diff) : -1;  // the highest bit where eligible keys differ
        T = top < 0 ? k_or : top == 31 ? 0u : k_or & ~((2u << top) - 1u);
        exact = false;
        for (; top >= 0; --top) {
            const uint32_t c = T | (1u << top);
            const int m = count_at_least(c);
            if (m >= k) {
                T = c;
                if (m == k) {
                    exact = true;
                    break;
                }
            }
        }
        if (!exact) k_rem = k - (T == ~0u ? 0 : count_at_least(T + 1));
    }
    __syncthreads();  // s_bits zeroed

    // Mark: forced, every eligible item when k covers them, else the keys above T (>= T when exact), then
    // the k_rem lowest-index keys equal to T. Rounds in order, threads in order: index order.
    const bool ties = rank && !exact;
    int taken_eq = 0;  // keys == T taken by earlier rounds (ties only)
    auto mark = [&](int r, uint32_t x) {
        const int i = r * kThreads + tid;
        bool take = false, eq = false;
        if (i < n_items) {
            const bool forced = i < a || i >= b;
            if (forced || (k > 0 && !rank)) {
                take = true;
            } else if (rank) {
                take = exact ? x >= T : x > T;
                eq = ties && x == T;
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
    };
    // Whole-page lists take their page ids from the block table: requested here, used after the marks.
    const bool whole_pages = !p.tokens_are_items && p.sink_tokens <= 0 && p.window_tokens <= 0;
    int32_t page_id[kRegRounds];
#pragma unroll
    for (int r = 0; r < kRegRounds; ++r) {
        const int j = r * kThreads + tid;
        page_id[r] = whole_pages && j < n_items ? table[j] : -1;
    }
#pragma unroll
    for (int r = 0; r < kRegRounds; ++r) mark(r, key[r]);
    for (int r = kRegRounds; r < rounds; ++r) {
        const int i = r * kThreads + tid;
        mark(r, rank && i < n_items ? keys[i] : 0u);
    }
    __syncthreads();
    if (p.with_current_page && !p.tokens_are_items && tid == 0)
        s_bits[(n_pages - 1) >> 5] |= 1u << ((n_pages - 1) & 31);
    __syncthreads();

    if (whole_pages) {
        // Whole pages (quest, nsa without a window): each attended page is one run (0, its tokens), and
        // entry e is the e-th set bit. A scan of the words' popcounts gives each word's first entry; then
        // every thread writes its own marked pages' entries, all at once.
        const int n_words = (n_pages + 31) / 32;
        int n_entries = 0;
        for (int w0 = 0; w0 < n_words; w0 += kThreads) {
            const int w = w0 + tid;
            const uint32_t word = w < n_words ? s_bits[w] : 0u;
            int round_total;
            const int before = block_exclusive_scan(__popc(word), &round_total, s_warp);
            if (w < n_words) s_before[w] = n_entries + before;
            n_entries += round_total;
        }
        __syncthreads();
        auto emit = [&](int j, int32_t id) {
            const uint32_t word = s_bits[j >> 5];
            if ((word >> (j & 31)) & 1u) {
                const int at = s_before[j >> 5] + __popc(word & ((1u << (j & 31)) - 1u));
                pages_out[at] = id;
                ranges_out[at] = min(P, n - j * P) << 16;
            }
        };
#pragma unroll
        for (int r = 0; r < kRegRounds; ++r)
            if (r * kThreads + tid < n_items) emit(r * kThreads + tid, page_id[r]);
        for (int r = kRegRounds; r < rounds; ++r)
            if (r * kThreads + tid < n_items) emit(r * kThreads + tid, table[r * kThreads + tid]);
        const bool current = bit(n_pages - 1);  // the current page: not an item, its bit set above
        if (tid == 0) {
            if (current) emit(n_pages - 1, table[n_pages - 1]);
            p.list_len[li] = n_entries;
            // Items are complete pages; only the current one may be partial.
            if (p.attended)
                p.attended[li] = (n_entries - (current ? 1 : 0)) * P + (current ? n - (n_pages - 1) * P : 0);
        }
        return;
    }

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
    const int n_lists = p.per_head_lists ? p.n_heads : p.n_kv_heads;
    const int words = bits_words(p, max_tokens);
    const size_t smem = static_cast<size_t>(words) * 2 * 4;  // s_bits and s_before
    static size_t smem_set = 48 * 1024;  // raised once, before any capture that needs more
    if (smem > smem_set) {
        CUDA_CHECK(cudaFuncSetAttribute(page_select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
        smem_set = smem;
    }
    launch_kernel(page_select_kernel, dim3(n_lists, p.n_seq), dim3(kThreads), smem, stream, p, words);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
