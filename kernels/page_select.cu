// Top-k selection and page-list construction on the device (page_select.h): one kernel, one CTA of 1024
// threads per list.
//
// Keys: the group-reduced scores mapped to ordered uint32 keys (larger key = better; NaN as -inf, -0 as +0;
// forced items 0, so they never compete: every real score maps to a key >= 0x007fffff). Thread t owns items
// t, t + 1024, ...: the keys of the first kStagedRounds of them (8192 items per list, a 128K context at P =
// 16) in shared memory, any beyond in the `keys` scratch (L2). The scores of those first rounds are copied
// into shared memory with 16-byte cp.async, up to 4 heads' rows at once. One SM pulls only ~40 GB/s from L2
// (per-phase %globaltimer stamps, 128K: 128 KB of per-head rows took ~4 us), so the bytes per list are the
// cost: quest's sum and max are reduced by the score kernel (group_rows), which leaves one 32 KB row.
// Keys held in registers next to the staged rows made the compiler spill; the marks then took 4.3-5.6 us
// at 128K instead of 2.5-3.5.
//
// Threshold: the k-th largest key T. The eligible keys share their top bits (a block AND and OR); below
// them, a 256-bin histogram of the next 8 bits (shared-memory atomics, one barrier) gives the bin holding
// the k-th key and how many keys lie above it. The keys of that bin are the candidates: while they are more
// than one warp holds (256), the next 8 bits are histogrammed the same way; then they are gathered into
// shared memory and warp 0 finishes the search on them bit by bit, with warp reductions only. A bin that
// holds exactly the keys still needed ends the search there (the selection is every key >= the bin's
// start); otherwise T is a key value, and of the keys equal to T the lowest indices are taken, which is the
// CPU's total order (attention/top_k.cpp) exactly.
//
// Why: the bitwise search this replaces counted over the block once per bit (a reduction and a barrier
// each, ~13 steps for 8192 real keys: 4.9 us of a 14.4 us kernel at 128K). Here the AND/OR, one histogram
// pass, the gathering and warp 0's search took 0.5 + 1.4 + 1.2 + 1.0 us. Those times amount to about one
// warp instruction per cycle on the SM, so every pass over the items costs ~1-1.5 us at 8 items per thread
// (a warp-0 scan of the list's bit words, to save two barriers, measured slower: docs/perf.md). An
// earlier radix version (a key kernel on 16 CTAs per list building a 12-bit histogram in global memory)
// lost its time to global atomics on a few bins and a round trip of the keys through L2 between two kernels.
//
// Lists: whole-page policies (quest, nsa without a window) emit one entry per attended page straight from
// the bit words: a scan of their popcounts, then each thread writes its own pages' entries, their page ids
// from the block table copied into shared memory before the wait; sink and window token ranges take the
// general per-page run walk.
//
// Launched with programmatic serialisation: the prologue (the sequence's length, the bit words zeroed, the
// block table copied) reads only what the host copied before the step (the rule in launch.h), so it runs
// while the score kernel finishes.
//
// Cost (Llama-3.1-8B shape, 128K context, P = 16): 8191 pages per list; quest reads one 32 KB row of group
// scores, nsa (softmax over 4 heads, 2047 pages at P = 64) 4 rows of 8 KB plus the chunk partials; the list
// it writes is at most 64 KB.
#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/page_select.h"

namespace dsa::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kStagedRounds = 8;   // items per thread whose scores and keys are staged in shared memory
constexpr int kMaxListHeads = 16;  // query heads reduced into one list (G)
constexpr int kBinBits = 8, kBins = 1 << kBinBits;
constexpr int kCandPerLane = 8, kMaxCand = 32 * kCandPerLane;  // candidates warp 0 finishes the search on

// Dynamic shared memory: the staged scores [stage_heads][rounds][kThreads], s_bits and s_before
// [bits_words] each, the staged block table [table_items].
struct SelectLayout {
    int bits_words = 0, table_items = 0, rounds = 0, stage_heads = 0;
    size_t bytes() const {
        return (size_t{2} * bits_words + table_items + static_cast<size_t>(stage_heads) * rounds * kThreads) *
               4;
    }
};

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

__host__ __device__ inline bool whole_page_lists(const PageSelectParams& p) {
    return !p.tokens_are_items && p.sink_tokens <= 0 && p.window_tokens <= 0;
}

// A list reads one score row taken as it is (per-head lists, or quest's group rows already reduced by the
// score kernel), or its G heads' rows, reduced here.
__host__ __device__ inline bool one_row_per_list(const PageSelectParams& p) {
    return p.per_head_lists || p.group_rows;
}

__host__ __device__ inline int rows_per_list(const PageSelectParams& p) {
    return one_row_per_list(p) ? 1 : p.n_heads / p.n_kv_heads;
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

// The search's state between passes: the candidates are the keys whose bits [lo, 32) equal prefix's, `need`
// of them are still to be taken (the keys above the candidates are all taken), and there are n_cand.
struct Search {
    uint32_t prefix;
    int lo, need, n_cand;
};

__device__ __forceinline__ uint32_t high_mask(int lo) {  // bits [lo, 32)
    return lo >= 32 ? 0u : ~((1u << lo) - 1u);
}

__device__ __forceinline__ bool candidate(uint32_t x, const Search& q, uint32_t mask) {
    return x != 0u && ((x ^ q.prefix) & mask) == 0u;
}

__global__ void __launch_bounds__(kThreads)
    page_select_kernel(const PageSelectParams p, const SelectLayout lay) {
    extern __shared__ uint32_t smem[];
    // s_score first: its 16-byte copies need an aligned start. Its head-0 rows hold the keys once reduced.
    float* s_score = reinterpret_cast<float*>(smem);  // [stage_heads][rounds][kThreads]
    uint32_t* s_key = smem;                           // [rounds][kThreads] the first rounds' keys
    uint32_t* s_bits = smem + static_cast<size_t>(lay.stage_heads) * lay.rounds * kThreads;  // [bits_words]
    int* s_before = reinterpret_cast<int*>(s_bits + lay.bits_words);  // [bits_words] set bits before a word
    int32_t* s_table = s_before + lay.bits_words;                     // [table_items] page ids
    __shared__ int s_warp[32];
    __shared__ uint32_t s_and[kWarps], s_or[kWarps];
    __shared__ float s_max[kMaxListHeads], s_sum[kMaxListHeads];
    __shared__ int s_hist[kBins];
    __shared__ uint32_t s_cand[kMaxCand];
    __shared__ int s_n_cand;
    __shared__ Search s_search;
    __shared__ uint32_t s_threshold;
    __shared__ int s_exact, s_k_rem;

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int n_lists = gridDim.x, list = blockIdx.x, s = blockIdx.y;
    const int G = p.n_heads / p.n_kv_heads;
    const bool one_row = one_row_per_list(p);
    const int h0 = p.per_head_lists ? list : list * G, nh = one_row ? 1 : G;
    const ListPlan l = list_plan(p, s);
    const int P = p.page_size, n = l.n, n_pages = l.n_pages, n_items = l.n_items;
    const int32_t* table = p.block_tables + s * p.table_stride;
    const size_t li = static_cast<size_t>(s) * n_lists + list;
    int32_t* pages_out = p.page_lists + li * p.list_stride;
    int32_t* ranges_out = p.slot_ranges + li * p.list_stride;

    // Before the wait: the bit words zeroed, the histogram too, and the page ids of a whole-page list
    // requested into shared memory (block tables and lengths are host copies).
    const bool whole_pages = whole_page_lists(p);
    const int n_bits = p.tokens_are_items ? n : n_pages;
    const int n_table = whole_pages ? min(n_pages, lay.table_items) : 0;
    if (!l.dense) {
        for (int w = tid; w < (n_bits + 31) / 32; w += kThreads) s_bits[w] = 0;
        for (int j = tid; j < n_table; j += kThreads) cp_async_4(smem_u32(s_table + j), table + j);
    }
    cp_async_commit();
    for (int i = tid; i < kBins; i += kThreads) s_hist[i] = 0;
    if (tid == 0) s_n_cand = 0;
    pdl_begin();

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
    auto bit = [&](int i) { return (s_bits[i >> 5] >> (i & 31)) & 1u; };
    auto page_id = [&](int j) { return j < n_table ? s_table[j] : table[j]; };

    const int a = l.a, b = l.b, k = l.k;
    const bool rank = l.rank;
    const int rounds = (n_items + kThreads - 1) / kThreads;
    uint32_t* keys = p.keys + li * p.score_stride;  // items from kStagedRounds * kThreads on
    auto eligible = [&](int i) { return i < n_items && i >= a && i < b; };

    // Key of item r * kThreads + tid (0 when forced or past the items): the first kStagedRounds rounds in
    // shared memory, the rest in the scratch.
    auto key_at = [&](int r) -> uint32_t {
        const int i = r * kThreads + tid;
        return i >= n_items ? 0u : r < kStagedRounds ? s_key[i] : keys[i];
    };
    uint32_t T = 0;     // the threshold key
    bool exact = true;  // the keys >= T are exactly k (no key equal to T is left out)
    int k_rem = 0;      // of the keys equal to T, how many (the lowest indices) are taken
    if (rank) {
        const float* rows = p.scores + (static_cast<size_t>(s) * p.n_heads + h0) * p.score_stride;
        const GroupReduce mode = one_row ? GroupReduce::Sum : p.reduce;
        // Heads [hb, hb + stage_heads) of the first rounds' items into s_score, 16 bytes (4 items) per
        // copy; a barrier before they are read, as a thread reads other threads' copies.
        const int staged = min(n_items, lay.rounds * kThreads), per_head = (staged + 3) / 4;
        auto stage = [&](int hb) {
            for (int hh = 0; hh < lay.stage_heads && hb + hh < nh; ++hh) {
                const float* row = rows + static_cast<size_t>(hb + hh) * p.score_stride;
                const uint32_t at = smem_u32(s_score + hh * lay.rounds * kThreads);
                for (int c = tid; c < per_head; c += kThreads) cp_async_16(at + 16 * c, row + 4 * c);
            }
            cp_async_commit();
        };
        stage(0);
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

        float acc[kStagedRounds];
#pragma unroll
        for (int r = 0; r < kStagedRounds; ++r) acc[r] = 0.0f;
        for (int hb = 0; hb < nh; hb += lay.stage_heads) {
            if (hb > 0) {
                __syncthreads();  // every thread is done with the previous heads
                stage(hb);
            }
            cp_async_wait<0>();
            __syncthreads();
            for (int hh = 0; hh < lay.stage_heads && hb + hh < nh; ++hh) {
                const int h = hb + hh;
                const float mh = head_max(h), zh = head_sum(h);
                const float* v = s_score + hh * lay.rounds * kThreads + tid;
#pragma unroll
                for (int r = 0; r < kStagedRounds; ++r)
                    if (r < lay.rounds)
                        acc[r] = reduce_head(mode, h, acc[r], v[r * kThreads], p.softmax_scale, mh, zh);
            }
        }
        // The keys, and the bits every eligible key shares (eligible keys are the non-zero ones).
        uint32_t k_and = ~0u, k_or = 0u;
#pragma unroll
        for (int r = 0; r < kStagedRounds; ++r) {  // each thread's own slots: no other thread reads them
            const uint32_t x = eligible(r * kThreads + tid) ? order_key(acc[r]) : 0u;
            if (r < lay.rounds) s_key[r * kThreads + tid] = x;
            if (x) k_and &= x;
            k_or |= x;
        }
        for (int r = kStagedRounds; r < rounds; ++r) {  // beyond the first rounds: to the scratch
            const int i = r * kThreads + tid;
            if (i >= n_items) continue;
            float x = 0.0f;
            for (int h = 0; h < nh; ++h)
                x = reduce_head(mode, h, x, rows[h * p.score_stride + i], p.softmax_scale, head_max(h),
                                head_sum(h));
            const uint32_t key = eligible(i) ? order_key(x) : 0u;
            keys[i] = key;
            if (key) k_and &= key;
            k_or |= key;
        }
        auto for_keys = [&](auto&& f) {  // each thread's keys, in index order
            for (int r = 0; r < rounds; ++r) f(key_at(r));
        };

        k_and = __reduce_and_sync(0xffffffffu, k_and);
        k_or = __reduce_or_sync(0xffffffffu, k_or);
        if (lane == 0) {
            s_and[warp] = k_and;
            s_or[warp] = k_or;
        }
        __syncthreads();
        k_and = __reduce_and_sync(0xffffffffu, s_and[lane]);
        k_or = __reduce_or_sync(0xffffffffu, s_or[lane]);

        const uint32_t diff = k_and ^ k_or;
        Search q;
        q.lo = 32 - __clz(diff);  // bits [lo, 32) are common to every eligible key
        q.prefix = k_or & high_mask(q.lo);
        q.need = k;
        q.n_cand = b - a;
        bool done = q.lo == 0;  // every eligible key equal: T is that key, the lowest indices are taken
        if (done) {
            T = k_or;
            exact = false;
            k_rem = k;
        }
        // Histogram passes while the candidates are more than warp 0 holds.
        while (!done && q.n_cand > kMaxCand) {
            const int shift = max(0, q.lo - kBinBits);
            const uint32_t digit_mask = (1u << (q.lo - shift)) - 1u, mask = high_mask(q.lo);
            for_keys([&](uint32_t x) {
                if (candidate(x, q, mask)) atomicAdd(&s_hist[(x >> shift) & digit_mask], 1);
            });
            __syncthreads();
            if (warp == 0) {  // bins from the top: lane L holds bins kBins - 1 - 8 L - j, j < 8
                constexpr int kPer = kBins / 32;
                int c[kPer], sum = 0;
#pragma unroll
                for (int j = 0; j < kPer; ++j) {
                    c[j] = s_hist[kBins - 1 - kPer * lane - j];
                    sum += c[j];
                }
                int before = sum;  // inclusive scan over lanes, then exclusive
#pragma unroll
                for (int o = 1; o < 32; o <<= 1) {
                    const int y = __shfl_up_sync(0xffffffffu, before, o);
                    if (lane >= o) before += y;
                }
                before -= sum;
                if (before < q.need && q.need <= before + sum) {
#pragma unroll
                    for (int j = 0, above = before; j < kPer; ++j) {
                        if (above < q.need && q.need <= above + c[j]) {
                            const int bin = kBins - 1 - kPer * lane - j;
                            s_search = {q.prefix | (static_cast<uint32_t>(bin) << shift), shift,
                                        q.need - above, c[j]};
                        }
                        above += c[j];
                    }
                }
#pragma unroll
                for (int j = 0; j < kPer; ++j) s_hist[kPer * lane + j] = 0;  // for the next pass
            }
            __syncthreads();
            q = s_search;
            if (q.need == q.n_cand) {  // the bin holds exactly the keys still needed: all keys >= its start
                T = q.prefix;
                exact = true;
                done = true;
            } else if (q.lo == 0) {  // the bin is one key value: ties
                T = q.prefix;
                exact = false;
                k_rem = q.need;
                done = true;
            }
        }
        if (!done) {
            // Gather the candidates (at most kMaxCand), then warp 0 searches their bits below lo.
            const uint32_t mask = high_mask(q.lo);
            for_keys([&](uint32_t x) {
                const bool c = candidate(x, q, mask);
                const unsigned m = __ballot_sync(0xffffffffu, c);
                int base = 0;
                if (lane == 0 && m) base = atomicAdd(&s_n_cand, __popc(m));
                base = __shfl_sync(0xffffffffu, base, 0);
                if (c) s_cand[base + __popc(m & ((1u << lane) - 1u))] = x;
            });
            __syncthreads();
            if (warp == 0) {
                uint32_t c[kCandPerLane];
#pragma unroll
                for (int j = 0; j < kCandPerLane; ++j)
                    c[j] = lane + 32 * j < q.n_cand ? s_cand[lane + 32 * j] : 0u;
                auto count_at_least = [&](uint32_t t) {
                    int m = 0;
#pragma unroll
                    for (int j = 0; j < kCandPerLane; ++j) m += c[j] >= t;
                    return static_cast<int>(__reduce_add_sync(0xffffffffu, m));
                };
                uint32_t t = q.prefix;
                bool ex = false;
                for (int bit_i = q.lo - 1; bit_i >= 0; --bit_i) {
                    const uint32_t cand = t | (1u << bit_i);
                    const int m = count_at_least(cand);
                    if (m >= q.need) {
                        t = cand;
                        if (m == q.need) {
                            ex = true;
                            break;
                        }
                    }
                }
                const int rem = ex ? 0 : q.need - (t == ~0u ? 0 : count_at_least(t + 1));
                if (lane == 0) {
                    s_threshold = t;
                    s_exact = ex;
                    s_k_rem = rem;
                }
            }
            __syncthreads();
            T = s_threshold;
            exact = s_exact;
            k_rem = s_k_rem;
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // s_bits zeroed, s_table landed

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
    for (int r = 0; r < rounds; ++r) mark(r, rank ? key_at(r) : 0u);
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
        auto emit = [&](int j) {
            const uint32_t word = s_bits[j >> 5];
            if ((word >> (j & 31)) & 1u) {
                const int at = s_before[j >> 5] + __popc(word & ((1u << (j & 31)) - 1u));
                pages_out[at] = page_id(j);
                ranges_out[at] = min(P, n - j * P) << 16;
            }
        };
        for (int j = tid; j < n_items; j += kThreads) emit(j);
        const bool current = bit(n_pages - 1);  // the current page: not an item, its bit set above
        if (tid == 0) {
            if (current) emit(n_pages - 1);
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

// The dynamic shared memory of lists of up to max_tokens tokens: the bit words, the block table of a
// whole-page list up to its first rounds, and as many heads' staged scores (4, 2 or 1) as fit.
SelectLayout select_layout(const PageSelectParams& p, int max_tokens) {
    const int max_pages = (max_tokens + p.page_size - 1) / p.page_size;
    const int max_items = p.tokens_are_items ? max_tokens : max_pages - 1;
    SelectLayout lay;
    lay.bits_words = ((p.tokens_are_items ? max_tokens : max_pages) + 31) / 32;
    lay.table_items = whole_page_lists(p) ? std::min(max_pages, kStagedRounds * kThreads + 1) : 0;
    if (p.scores == nullptr) return lay;
    lay.rounds = std::min(kStagedRounds, (std::max(max_items, 1) + kThreads - 1) / kThreads);
    static const int optin = [] {
        int bytes = 0, device = 0;
        CUDA_CHECK(cudaGetDevice(&device));
        CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
        return bytes;
    }();
    const size_t limit = static_cast<size_t>(optin) - 4096;  // the kernel's static shared memory: ~2.6 KB
    for (lay.stage_heads = std::min(4, rows_per_list(p)); lay.stage_heads > 1 && lay.bytes() > limit;)
        lay.stage_heads /= 2;
    if (lay.bytes() > limit)
        throw_error("CUDA page_select: " + std::to_string(lay.bytes()) + " bytes of shared memory for " +
                    std::to_string(max_tokens) + " tokens, the device allows " + std::to_string(limit));
    return lay;
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
    if (p.scores == nullptr && p.select_total > 0)
        throw_error("CUDA page_select: a policy that picks items needs their scores");
    if (p.scores != nullptr && p.score_stride % 4 != 0)
        throw_error("CUDA page_select: the score stride " + std::to_string(p.score_stride) +
                    " is not a multiple of 4 (rows are staged in 16-byte copies)");
    const int n_lists = p.per_head_lists ? p.n_heads : p.n_kv_heads;
    const SelectLayout lay = select_layout(p, max_tokens);
    const size_t smem = lay.bytes();
    static size_t smem_set = 48 * 1024;  // raised once, before any capture that needs more
    if (smem > smem_set) {
        CUDA_CHECK(cudaFuncSetAttribute(page_select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
        smem_set = smem;
    }
    launch_kernel_as(true, page_select_kernel, dim3(n_lists, p.n_seq), dim3(kThreads), smem, stream, p, lay);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
