// Top-k selection and page-list construction on the device (page_select.h), in two kernels.
//
// Keys: the reduced scores mapped to ordered uint32 keys (larger key = better; NaN as -inf, -0 as +0, forced
// items 0 so they never compete). page_keys_kernel spreads them over many CTAs (kKeyItems items each): it
// writes every key to the `keys` scratch and counts the eligible keys per 12-bit bin (key >> 20) into the
// list's histogram, with warp-aggregated atomics (scores of one magnitude share their top bits).
//
// Top-k (page_select_kernel, one CTA per list): the histogram gives the bin of the k-th largest key; only
// that bin's keys (candidates: a small fraction of the 8K when the scores spread over several binades) go
// on, into shared memory, through 8-bit radix passes over the 20 lower bits, each a shared-memory histogram
// of the candidates still matching the digits chosen so far, to the k-th largest key T. Keys above T are
// taken, and of those equal to T the lowest indices, which is the CPU's total order (attention/top_k.cpp)
// exactly. A bin holding exactly the keys still needed ends the search early; the ordered scan for ties
// runs only when keys equal to T are left over.
//
// Why two kernels: one 1024-thread CTA computing the keys and running four radix passes over all of them
// issued about 4.3K instructions per warp at 128K context (57 us, ncu: 1.3 IPC, short-scoreboard stalls on
// the shared-memory histogram), serial work on 8 SMs. Split (ncu, same case): page_keys 8.1 us on 128 CTAs,
// page_select 24.5 us, then mostly the mark pass and the page-run scan, still one CTA per list.
//
// Lists: whole-page policies (quest, nsa without a window) emit one entry per attended page straight from
// the bit words (one thread per 32 pages, a scan of their popcounts); sink and window token ranges take
// the general per-page run walk.
//
// Cost (Llama-3.1-8B shape, 128K context, P = 16): 8191 pages and 4 query heads per list: the 128 KB of
// per-head scores are read once, coalesced, from L2 (the softmax normalisers come from the score kernel's
// per-chunk partials); the 32 KB of keys are written once and read twice from L2; the list it writes is at
// most 64 KB.
#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "kernels/common.cuh"
#include "kernels/launch.cuh"
#include "kernels/page_select.h"

namespace dsa::cuda {

namespace {

constexpr int kThreads = 1024;  // page_select_kernel
constexpr int kWarps = kThreads / 32;
constexpr int kKeyThreads = 256;                     // page_keys_kernel
constexpr int kKeyRounds = 2;                        // items per thread, their score loads in flight together
constexpr int kKeyItems = kKeyThreads * kKeyRounds;  // items per page_keys CTA
constexpr int kMaxListHeads = 16;                    // query heads reduced into one list (G)
constexpr int kBinShift = 20;                        // histogram bin of a key: its top 12 bits
constexpr int kMaxSmemCands = 8192;                  // candidates kept in shared memory (32 KB)
static_assert(kPageSelectBins == 1 << (32 - kBinShift) && kPageSelectBins == 4 * kThreads);

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

// Bins with 32 lanes: lanes holding the same bin add once, the lowest of them (warp-aggregated atomics).
__device__ __forceinline__ void count_bin(uint32_t* hist, bool valid, int bin) {
    const int lane = threadIdx.x % 32;
    const unsigned same = __match_any_sync(0xffffffffu, valid ? bin : -1 - lane);
    if (valid && lane == __ffs(same) - 1) atomicAdd(&hist[bin], __popc(same));
}

// Grid (kKeyItems-item chunks, n_lists, n_seq), kKeyThreads threads. keys[i] for the chunk's items and the
// eligible keys' bins added to the list's histogram (global, zero on entry).
__global__ void __launch_bounds__(kKeyThreads) page_keys_kernel(const PageSelectParams p) {
    pdl_begin();
    __shared__ uint32_t s_hist[kPageSelectBins];
    __shared__ float s_max[kMaxListHeads], s_sum[kMaxListHeads];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int list = blockIdx.y, n_lists = gridDim.y, s = blockIdx.z;
    const ListPlan l = list_plan(p, s);
    const int i0 = blockIdx.x * kKeyItems;
    if (!l.rank || i0 >= l.n_items) return;  // the same condition as page_select_kernel's
    const size_t li = static_cast<size_t>(s) * n_lists + list;
    uint32_t* keys = p.keys + li * p.score_stride;

    const int G = p.n_heads / p.n_kv_heads;
    const int h0 = p.per_head_lists ? list : list * G, nh = p.per_head_lists ? 1 : G;
    const float* rows = p.scores + (static_cast<size_t>(s) * p.n_heads + h0) * p.score_stride;
    const GroupReduce mode = p.per_head_lists ? GroupReduce::Sum : p.reduce;
    if (mode == GroupReduce::Softmax) {  // combine the chunks' (max, sum) of every head
        const int n_chunks = (l.n_items + p.chunk_items - 1) / p.chunk_items;
        for (int h = warp; h < nh; h += kKeyThreads / 32) {
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
    }
    for (int j = tid; j < kPageSelectBins; j += kKeyThreads) s_hist[j] = 0;
    __syncthreads();

    // Every head's loads of the thread's kKeyRounds items issued together, heads in the CPU's order
    // (reduce_group_scores: from head 0).
    float acc[kKeyRounds];
#pragma unroll
    for (int u = 0; u < kKeyRounds; ++u) acc[u] = 0.0f;
    for (int h = 0; h < nh; ++h) {
        float v[kKeyRounds];
#pragma unroll
        for (int u = 0; u < kKeyRounds; ++u) {
            const int i = i0 + u * kKeyThreads + tid;
            v[u] = i < l.n_items ? rows[h * p.score_stride + i] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kKeyRounds; ++u) {
            switch (mode) {
                case GroupReduce::Sum:
                    acc[u] += v[u];
                    break;
                case GroupReduce::Max:
                    acc[u] = h == 0 ? v[u] : fmaxf(acc[u], v[u]);
                    break;
                case GroupReduce::Softmax:
                    acc[u] += expf(v[u] * p.softmax_scale - s_max[h]) / s_sum[h];
                    break;
            }
        }
    }
#pragma unroll
    for (int u = 0; u < kKeyRounds; ++u) {
        const int i = i0 + u * kKeyThreads + tid;
        const bool eligible = i < l.n_items && i >= l.a && i < l.b;
        const uint32_t key = eligible ? order_key(acc[u]) : 0u;
        if (i < l.n_items) keys[i] = key;
        count_bin(s_hist, eligible, static_cast<int>(key >> kBinShift));
    }
    __syncthreads();
    uint32_t* hist = p.hist + li * kPageSelectBins;
    for (int j = tid; j < kPageSelectBins; j += kKeyThreads)
        if (s_hist[j]) atomicAdd(&hist[j], s_hist[j]);
}

__global__ void __launch_bounds__(kThreads)
    page_select_kernel(const PageSelectParams p, int bits_words, int cand_capacity) {
    pdl_begin();
    extern __shared__ uint32_t smem[];
    uint32_t* s_bits = smem;               // [bits_words] attended items: pages, or tokens
    uint32_t* s_cand = smem + bits_words;  // [cand_capacity] the candidates' keys
    __shared__ int s_warp[32], s_count;
    __shared__ uint32_t s_hist[256];
    __shared__ int s_pick[3];  // bin, keys in higher bins, keys in its bin

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int n_lists = gridDim.x, list = blockIdx.x, s = blockIdx.y;
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
    __syncthreads();
    auto bit = [&](int i) { return (s_bits[i >> 5] >> (i & 31)) & 1u; };

    // Items are visited strided (item i by thread i % kThreads), in warp-uniform rounds so that a warp's 32
    // items are one word of s_bits and its loads coalesce.
    const int a = l.a, b = l.b, k = l.k;
    const bool rank = l.rank;
    const int rounds = (n_items + kThreads - 1) / kThreads;
    const uint32_t* keys = p.keys + li * p.score_stride;

    uint32_t prefix = 0, mask = 0;
    int k_rem = k;
    bool ties = false;  // keys equal to T remain that only the lower indices may take
    if (rank) {
        // The bin of the k-th largest key: thread t holds bins 4095 - 4t - 3 .. 4095 - 4t, so that thread
        // order is descending bin order. The histogram is zeroed behind it for the next step.
        uint32_t* hist = p.hist + li * kPageSelectBins;
        const int t0 = kPageSelectBins - 4 * (tid + 1);
        int c[4], tot = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) tot += c[j] = static_cast<int>(hist[t0 + j]);
        int total;
        int above = block_exclusive_scan(tot, &total, s_warp);
#pragma unroll
        for (int j = 3; j >= 0; --j) {
            if (above < k && above + c[j] >= k) {
                s_pick[0] = t0 + j;
                s_pick[1] = above;
                s_pick[2] = c[j];
            }
            above += c[j];
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) hist[t0 + j] = 0;
        __syncthreads();
        k_rem -= s_pick[1];
        prefix = static_cast<uint32_t>(s_pick[0]) << kBinShift;
        mask = ~((1u << kBinShift) - 1u);
        const int m = s_pick[2];  // candidates: the eligible keys in that bin
        int hi = kBinShift;
        ties = m != k_rem;
        if (!ties) hi = 0;  // the bin holds exactly the keys still needed: take it whole

        // The candidates into shared memory when they fit, else the radix passes read every key.
        const uint32_t* src = keys;
        int n_src = n_items;
        if (ties && m <= cand_capacity) {
            if (tid == 0) s_count = 0;
            __syncthreads();
            for (int r = 0; r < rounds; ++r) {
                const int i = r * kThreads + tid;
                const uint32_t key = i < n_items ? keys[i] : 0u;
                const bool match = i < n_items && (key & mask) == prefix;  // forced keys (0) never match
                const unsigned ballot = __ballot_sync(0xffffffffu, match);
                int base = 0;
                if (lane == 0 && ballot) base = atomicAdd(&s_count, __popc(ballot));
                base = __shfl_sync(0xffffffffu, base, 0);
                if (match) s_cand[base + __popc(ballot & ((1u << lane) - 1u))] = key;
            }
            __syncthreads();
            src = s_cand;
            n_src = m;
        }
        const int src_rounds = (n_src + kThreads - 1) / kThreads;
        while (hi > 0) {
            const int lo = max(0, hi - 8);
            const uint32_t dmask = (1u << (hi - lo)) - 1u;
            if (tid < 256) s_hist[tid] = 0;
            __syncthreads();
            for (int r = 0; r < src_rounds; ++r) {
                const int i = r * kThreads + tid;
                const uint32_t key = i < n_src ? src[i] : 0u;
                const bool match = i < n_src && (key & mask) == prefix;
                count_bin(s_hist, match, static_cast<int>((key >> lo) & dmask));
            }
            __syncthreads();
            if (warp == 0) {  // lane l holds bins 8l .. 8l + 7; find the bin of the k_rem-th largest key
                uint32_t cb[8];
                int lane_tot = 0;
#pragma unroll
                for (int j = 0; j < 8; ++j) lane_tot += static_cast<int>(cb[j] = s_hist[lane * 8 + j]);
                int up = lane_tot;  // keys in this lane's bins and above, then above only
#pragma unroll
                for (int o = 1; o < 32; o <<= 1) {
                    const int y = __shfl_down_sync(0xffffffffu, up, o);
                    if (lane + o < 32) up += y;
                }
                up -= lane_tot;
#pragma unroll
                for (int j = 7; j >= 0; --j) {
                    const int cj = static_cast<int>(cb[j]);
                    if (up < k_rem && up + cj >= k_rem) {
                        s_pick[0] = lane * 8 + j;
                        s_pick[1] = up;
                        s_pick[2] = cj;
                    }
                    up += cj;
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

    if (!p.tokens_are_items && p.sink_tokens <= 0 && p.window_tokens <= 0) {
        // Whole pages (quest, nsa without a window): each attended page is one run (0, its tokens). One
        // thread per 32-page word of s_bits, set bits written in page order after a scan of their counts.
        const int n_words = (n_pages + 31) / 32;
        int n_entries = 0, n_tok = 0;
        for (int w0 = 0; w0 < n_words; w0 += kThreads) {
            const int w = w0 + tid;
            const uint32_t word = w < n_words ? s_bits[w] : 0u;
            int round_total;
            int at = n_entries + block_exclusive_scan(__popc(word), &round_total, s_warp);
            for (uint32_t m = word; m != 0; m &= m - 1) {
                const int j = w * 32 + __ffs(m) - 1, cnt = min(P, n - j * P);
                pages_out[at] = table[j];
                ranges_out[at] = cnt << 16;
                ++at;
                n_tok += cnt;
            }
            n_entries += round_total;
        }
        const float tokens = block_sum(static_cast<float>(n_tok));
        if (tid == 0) {
            p.list_len[li] = n_entries;
            if (p.attended) p.attended[li] = static_cast<int>(tokens + 0.5f);
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
    const int cand_capacity = p.scores ? std::min(p.score_stride, kMaxSmemCands) : 0;
    const size_t smem = (static_cast<size_t>(words) + cand_capacity) * 4;
    static size_t smem_set = 48 * 1024;  // raised once, before any capture that needs more
    if (smem > smem_set) {
        CUDA_CHECK(cudaFuncSetAttribute(page_select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
        smem_set = smem;
    }
    if (p.scores) {
        const int chunks = (p.score_stride + kKeyItems - 1) / kKeyItems;
        launch_kernel(page_keys_kernel, dim3(chunks, n_lists, p.n_seq), dim3(kKeyThreads), 0, stream, p);
        CUDA_CHECK_LAUNCH();
    }
    launch_kernel(page_select_kernel, dim3(n_lists, p.n_seq), dim3(kThreads), smem, stream, p, words,
                  cand_capacity);
    CUDA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda
