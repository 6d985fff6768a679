// The sparse policies' device selection (backend/cuda/device_selection.h: the score kernels of
// kernels/page_scores.h, then the top-k and page lists of kernels/page_select.h) against the CPU reference
// (attention/selection.h), both reading the same bf16 keys and page metadata: the per-head scores, the
// attended tokens of every policy and GQA mode (equal, but for near ties of the CPU's scores at its
// threshold), exact ties (the lower index wins), budgets covering the context (the block table itself),
// and the decode attention over the lists DeviceSelection attaches.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "attention/policy.h"
#include "attention/selection.h"
#include "backend/cuda/device_selection.h"
#include "gpu_test_util.h"
#include "kernels/decode_attention.h"
#include "kernels/page_scores.h"
#include "paged_kv_fixture.h"

namespace dsa::test {
namespace {

constexpr int kKvHeads = 2;

struct Shape {
    int head_dim, group;
};

// ---- the data: keys, metadata and queries, on the host and on the device ----

// Page metadata as the cache keeps it, from the pool's bf16 keys, and the fp32 values the CPU reads. Pages no
// sequence owns hold NaN (count 0), so a kernel reading one poisons its scores.
struct PageMetadata {
    std::vector<uint16_t> kminmax;  // [num_pages][n_kv_heads][2][D] bf16 bits: kmin row, kmax row
    std::vector<float> ksum;        // [num_pages][n_kv_heads][D] sum of the page's keys in slot order
    std::vector<int32_t> count;     // [num_pages][n_kv_heads] keys in the page
    std::vector<float> kmin, kmax;  // [num_pages][n_kv_heads][D] fp32 values of the kminmax rows
    std::vector<float> keys;        // [num_pages][n_kv_heads][P][D] fp32 values of the pool's keys
};

PageMetadata make_metadata(const PagedKv& kv) {
    const int D = kv.head_dim, P = kv.page_size;
    const size_t rows = static_cast<size_t>(kv.num_pages) * kv.n_kv_heads;  // (page, KV head) pairs
    const float nan = std::numeric_limits<float>::quiet_NaN();
    PageMetadata m;
    m.kminmax.assign(rows * 2 * D, kBf16Nan);
    m.ksum.assign(rows * D, nan);
    m.count.assign(rows, 0);
    m.kmin.assign(rows * D, nan);
    m.kmax.assign(rows * D, nan);
    m.keys.resize(kv.k.size());
    for (size_t i = 0; i < kv.k.size(); ++i) m.keys[i] = kv.kf(i);
    for (size_t s = 0; s < kv.pages.size(); ++s)
        for (size_t j = 0; j < kv.pages[s].size(); ++j) {
            const int page = kv.pages[s][j];
            const int count = std::min(P, kv.lengths[s] - static_cast<int>(j) * P);
            for (int h = 0; h < kv.n_kv_heads; ++h) {
                const size_t r = static_cast<size_t>(page) * kv.n_kv_heads + h;
                m.count[r] = count;
                for (int d = 0; d < D; ++d) {
                    float lo = kv.kf(kv.index(page, h, 0) + d), hi = lo, sum = 0.0f;
                    for (int t = 0; t < count; ++t) {
                        const float x = kv.kf(kv.index(page, h, t) + d);
                        lo = std::min(lo, x);
                        hi = std::max(hi, x);
                        sum += x;
                    }
                    m.kmin[r * D + d] = lo;
                    m.kmax[r * D + d] = hi;
                    m.ksum[r * D + d] = sum;
                    m.kminmax[r * 2 * D + d] = f32_to_bf16(lo);  // exact: the min of bf16 keys is one of them
                    m.kminmax[r * 2 * D + D + d] = f32_to_bf16(hi);
                }
            }
        }
    return m;
}

// One decode step: the paged pool of the batch, its metadata, the queries.
struct Step {
    PagedKv kv;
    PageMetadata meta;
    Typed q;  // [n_seq][n_heads][D] bf16 (random normals), and their fp32 values for the CPU
    int n_heads = 0;

    int n_seq() const { return static_cast<int>(kv.lengths.size()); }
    int group() const { return n_heads / kv.n_kv_heads; }
    int max_tokens() const { return *std::max_element(kv.lengths.begin(), kv.lengths.end()); }
};

Step make_step(Rng& rng, const std::vector<int>& lengths, const Shape& sh, int page_size) {
    Step st;
    st.kv = make_paged_kv(rng, lengths, kKvHeads, page_size, sh.head_dim);
    st.meta = make_metadata(st.kv);
    st.n_heads = kKvHeads * sh.group;
    st.q = make_typed(rng.normals(lengths.size() * st.n_heads * sh.head_dim), DType::BF16);
    return st;
}

// The keys of every page from the fourth on, per KV head, copied from one of the sequence's first three
// pages at random, so that the scores of the pages (and of the tokens at a slot) tie exactly in three
// classes; the metadata is rebuilt. Every sequence needs four pages or more.
void tie_pages(Rng& rng, Step& st) {
    PagedKv& kv = st.kv;
    const int P = kv.page_size, D = kv.head_dim;
    for (size_t s = 0; s < kv.pages.size(); ++s) {
        const std::vector<int>& table = kv.pages[s];
        for (int h = 0; h < kv.n_kv_heads; ++h)
            for (size_t j = 3; j < table.size(); ++j) {
                const int src = table[static_cast<size_t>(rng.integer(0, 2))];
                const int count = std::min(P, kv.lengths[s] - static_cast<int>(j) * P);
                std::copy_n(kv.k.begin() + static_cast<std::ptrdiff_t>(kv.index(src, h, 0)), count * D,
                            kv.k.begin() + static_cast<std::ptrdiff_t>(kv.index(table[j], h, 0)));
            }
    }
    st.meta = make_metadata(kv);
}

// The step on the device.
struct DeviceStep {
    cuda::DeviceBuffer k, v, kminmax, ksum, count, q, tables, seq_len;
    int64_t table_stride = 0;
    int n_seq = 0;

    explicit DeviceStep(const Step& st)
        : k(to_device(st.kv.k)),
          v(to_device(st.kv.v)),
          kminmax(to_device(st.meta.kminmax)),
          ksum(to_device(st.meta.ksum)),
          count(to_device(st.meta.count)),
          q(to_device(st.q.bytes)),
          seq_len(to_device(std::vector<int32_t>(st.kv.lengths.begin(), st.kv.lengths.end()))),
          n_seq(st.n_seq()) {
        // Block tables [n_seq][table_stride], padded past each sequence's pages with a page no sequence owns.
        std::vector<bool> owned(static_cast<size_t>(st.kv.num_pages), false);
        size_t widest = 0;
        for (const std::vector<int>& table : st.kv.pages) {
            for (int page : table) owned[static_cast<size_t>(page)] = true;
            widest = std::max(widest, table.size());
        }
        const int unowned = static_cast<int>(std::find(owned.begin(), owned.end(), false) - owned.begin());
        table_stride = static_cast<int64_t>(widest) + 1;
        std::vector<int32_t> padded(st.kv.pages.size() * static_cast<size_t>(table_stride), unowned);
        for (size_t s = 0; s < st.kv.pages.size(); ++s)
            std::copy(st.kv.pages[s].begin(), st.kv.pages[s].end(),
                      padded.begin() + static_cast<std::ptrdiff_t>(s * static_cast<size_t>(table_stride)));
        tables = to_device(padded);
    }

    cuda::LayerCache cache() const {
        return {k.as<uint16_t>(), kminmax.as<uint16_t>(), ksum.as<float>(), count.as<int32_t>()};
    }
    cuda::StepSequences seqs() const {
        return {tables.as<int32_t>(), table_stride, seq_len.as<int32_t>(), n_seq};
    }
};

// ---- the CPU reference over the same data ----

// The CPU's input for (sequence s, KV head kvh): views of the step's fp32 metadata and keys, in block-table
// order.
struct CpuGroup {
    const float* q = nullptr;  // [G][D]
    int group = 0, head_dim = 0, page_size = 0, n_tokens = 0;
    std::vector<PageMeta> meta;      // [n_pages]
    std::vector<const float*> keys;  // [n_pages] -> [P][D]

    int n_pages() const { return static_cast<int>(meta.size()); }
    SelectInput input() const { return {q, group, head_dim, page_size, n_tokens, meta, keys}; }
};

CpuGroup cpu_group(const Step& st, int s, int kvh) {
    const PagedKv& kv = st.kv;
    const int D = kv.head_dim;
    CpuGroup g;
    g.group = st.group();
    g.q = st.q.values.data() + (static_cast<size_t>(s) * st.n_heads + static_cast<size_t>(kvh) * g.group) * D;
    g.head_dim = D;
    g.page_size = kv.page_size;
    g.n_tokens = kv.lengths[static_cast<size_t>(s)];
    for (int page : kv.pages[static_cast<size_t>(s)]) {
        const size_t r = static_cast<size_t>(page) * kv.n_kv_heads + kvh;
        g.meta.push_back({st.meta.kmin.data() + r * D, st.meta.kmax.data() + r * D,
                          st.meta.ksum.data() + r * D, st.meta.count[r]});
        g.keys.push_back(st.meta.keys.data() + kv.index(page, kvh, 0));
    }
    return g;
}

// The CPU's per-head scores of the items a policy ranks, [G][n_items]: quest and nsa the complete pages
// (n_pages - 1), the oracle every token, q . k_t as select_oracle computes it.
std::vector<float> cpu_scores(PolicyKind kind, const CpuGroup& g) {
    const int D = g.head_dim, P = g.page_size;
    const int n_items = kind == PolicyKind::Oracle ? g.n_tokens : g.n_pages() - 1;
    std::vector<float> scores(static_cast<size_t>(g.group) * n_items);
    for (int h = 0; h < g.group; ++h) {
        const float* q = g.q + static_cast<size_t>(h) * D;  // [D]
        const std::span<float> row =
            std::span<float>(scores).subspan(static_cast<size_t>(h) * n_items, static_cast<size_t>(n_items));
        if (kind == PolicyKind::Quest) {
            quest_bounds(q, D, g.meta, row);
        } else if (kind == PolicyKind::Nsa) {
            mean_key_scores(q, D, g.meta, row);
        } else {
            for (int t = 0; t < n_items; ++t) {
                const float* k = g.keys[static_cast<size_t>(t / P)] + static_cast<size_t>(t % P) * D;  // [D]
                float dot = 0.0f;
                for (int i = 0; i < D; ++i) dot += q[i] * k[i];
                row[static_cast<size_t>(t)] = dot;
            }
        }
    }
    return scores;
}

// What the CPU ranks the items by, one row per selecting head: the G heads' own scores (per-head), or the
// group-reduced scores. [1 or G][n_items].
std::vector<std::vector<float>> cpu_ranked(const AttentionPolicy& pol, const CpuGroup& g) {
    const std::vector<float> scores = cpu_scores(pol.kind, g);
    const size_t n = scores.size() / static_cast<size_t>(g.group);
    std::vector<std::vector<float>> rows;
    if (pol.gqa == GqaMode::PerHead) {
        for (size_t h = 0; h < static_cast<size_t>(g.group); ++h)
            rows.emplace_back(scores.begin() + static_cast<std::ptrdiff_t>(h * n),
                              scores.begin() + static_cast<std::ptrdiff_t>((h + 1) * n));
    } else {
        const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
        rows.push_back(reduce_group_scores(scores, g.group, pol.gqa, scale));
    }
    return rows;
}

// Whether item i of n_items is attended without competing: quest's sink and recent pages, nsa's init and
// local blocks.
bool forced_item(const AttentionPolicy& pol, int i, int n_items) {
    int first = 0, last = 0;
    if (pol.kind == PolicyKind::Quest) {
        first = pol.sink_pages;
        last = pol.recent_pages;
    } else if (pol.kind == PolicyKind::Nsa) {
        first = pol.init_blocks;
        last = pol.local_blocks;
    }
    return i < first || i >= n_items - last;
}

std::vector<int> span_positions(const HeadSelection& head) {
    std::vector<int> positions;
    for (const TokenSpan& span : head.spans)
        for (int t = span.begin; t < span.end; ++t) positions.push_back(t);
    return positions;
}

// ---- the device's lists ----

// The outputs of one select(), copied back. Entry e of list l of sequence s is at
// s * seq_stride + l * head_stride + e; its range is lo | hi << 16.
struct DeviceLists {
    std::vector<int32_t> pages, ranges;  // [n_seq][n_lists][list_stride]
    std::vector<int32_t> len, attended;  // [n_seq][n_lists]
    int64_t seq_stride = 0, head_stride = 0;
    int n_lists = 0;

    size_t list(int s, int l) const { return static_cast<size_t>(s) * n_lists + l; }
    size_t entry(int s, int l, int e) const {
        return static_cast<size_t>(s * seq_stride + l * head_stride + e);
    }
};

template <typename T>
std::vector<T> copy_to_host(const T* device, size_t n) {
    std::vector<T> v(n);
    CUDA_CHECK(cudaMemcpy(v.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
}

// Runs sel.select() on poisoned outputs (its lists, reached through attach(), and `attended`).
DeviceLists select_on_device(cuda::DeviceSelection& sel, const DeviceStep& dev, int n_seq) {
    cuda::DecodeAttentionParams da;
    sel.attach(da);
    DeviceLists d;
    d.seq_stride = da.list_seq_stride;
    d.head_stride = da.list_head_stride;
    d.n_lists = sel.n_lists();
    const size_t entries = static_cast<size_t>(n_seq * d.seq_stride),
                 lists = static_cast<size_t>(n_seq) * d.n_lists;
    CUDA_CHECK(cudaMemset(const_cast<int32_t*>(da.page_lists), 0xFF, entries * 4));
    CUDA_CHECK(cudaMemset(const_cast<int32_t*>(da.slot_ranges), 0xFF, entries * 4));
    CUDA_CHECK(cudaMemset(const_cast<int32_t*>(da.list_len), 0xFF, lists * 4));
    const cuda::DeviceBuffer attended = poisoned(lists * 4);
    sel.select(dev.cache(), dev.q.as<uint16_t>(), dev.seqs(), attended.as<int32_t>(), nullptr);
    d.attended = from_device<int32_t>(attended, lists);  // synchronizes
    d.pages = copy_to_host(da.page_lists, entries);
    d.ranges = copy_to_host(da.slot_ranges, entries);
    d.len = copy_to_host(da.list_len, lists);
    return d;
}

// The token positions list (s, l) attends, checking its form: entries ascending in position and disjoint,
// each a page of the sequence's block table with a non-empty slot range inside the page's n - jP tokens.
std::vector<int> list_positions(const DeviceLists& d, int s, int l, const std::vector<int>& table, int n,
                                int P) {
    std::vector<int> positions;
    const int len = d.len[d.list(s, l)];
    if (len < 0 || len > d.head_stride) {
        ADD_FAILURE() << "list_len " << len << " outside [0, " << d.head_stride << "]";
        return positions;
    }
    for (int e = 0; e < len; ++e) {
        const int page = d.pages[d.entry(s, l, e)], range = d.ranges[d.entry(s, l, e)];
        const int lo = range & 0xffff, hi = range >> 16;
        const auto it = std::find(table.begin(), table.end(), page);
        if (it == table.end()) {
            ADD_FAILURE() << "entry " << e << ": page " << page << " is not in the sequence's block table";
            return positions;
        }
        const int j = static_cast<int>(it - table.begin());
        if (lo >= hi || hi > std::min(P, n - j * P)) {
            ADD_FAILURE() << "entry " << e << " (block " << j << "): slot range [" << lo << ", " << hi
                          << ") empty or past the page's " << std::min(P, n - j * P) << " tokens";
            return positions;
        }
        if (!positions.empty() && j * P + lo <= positions.back()) {
            ADD_FAILURE() << "entry " << e << " (block " << j << ", slots [" << lo << ", " << hi
                          << ")) starts at or before token " << positions.back() << " of an earlier entry";
            return positions;
        }
        for (int t = j * P + lo; t < j * P + hi; ++t) positions.push_back(t);
    }
    return positions;
}

// List (s, l) is the block table itself: entry j = (table[j], 0 | min(P, n - jP) << 16), n_pages entries.
void expect_block_table(const DeviceLists& d, int s, int l, const std::vector<int>& table, int n, int P) {
    const int n_pages = (n + P - 1) / P;
    ASSERT_EQ(d.len[d.list(s, l)], n_pages);
    std::vector<int> pages, ranges, expected_ranges;
    for (int j = 0; j < n_pages; ++j) {
        pages.push_back(d.pages[d.entry(s, l, j)]);
        ranges.push_back(d.ranges[d.entry(s, l, j)]);
        expected_ranges.push_back(std::min(P, n - j * P) << 16);
    }
    EXPECT_EQ(pages, std::vector<int>(table.begin(), table.begin() + n_pages));
    EXPECT_EQ(ranges, expected_ranges);
}

// The CPU's ranking of one list's items (pages, or the oracle's tokens): their scores and its threshold,
// the smallest score it picked among the competing items.
struct Ranking {
    std::vector<float> scores;  // [n_items]
    float threshold = std::numeric_limits<float>::infinity();
    bool tied = false;  // an item that competes and was not picked scores exactly the threshold
};

Ranking cpu_ranking(const AttentionPolicy& pol, std::vector<float> scores, const HeadSelection& cpu) {
    Ranking r;
    r.scores = std::move(scores);
    const int n_items = static_cast<int>(r.scores.size());
    std::vector<uint8_t> picked(static_cast<size_t>(n_items), 0);  // [n_items]
    if (pol.kind == PolicyKind::Oracle) {
        for (int t : span_positions(cpu)) picked[static_cast<size_t>(t)] = 1;
    } else {
        for (int j : cpu.pages)
            if (j < n_items) picked[static_cast<size_t>(j)] = 1;
    }
    for (int i = 0; i < n_items; ++i)
        if (picked[static_cast<size_t>(i)] && !forced_item(pol, i, n_items))
            r.threshold = std::min(r.threshold, r.scores[static_cast<size_t>(i)]);
    for (int i = 0; i < n_items; ++i)
        if (!picked[static_cast<size_t>(i)] && !forced_item(pol, i, n_items) &&
            r.scores[static_cast<size_t>(i)] == r.threshold)
            r.tied = true;
    return r;
}

// The positions a device list attends against the CPU's selection of its head (n tokens). Without `ranking`
// they must be equal. With it, an item in the symmetric difference is allowed when it competes and its score
// is within 1e-4 of the largest |score| of the CPU's threshold (the two sides sum in different orders, so
// near ties may break either way), and as many items must be the device's only as the CPU's only.
void expect_same_tokens(const AttentionPolicy& pol, const std::vector<int>& device, const HeadSelection& cpu,
                        const Ranking* ranking, int n, int P) {
    const std::vector<int> expected = span_positions(cpu);
    if (device == expected) return;
    std::vector<int> diff;
    std::set_symmetric_difference(device.begin(), device.end(), expected.begin(), expected.end(),
                                  std::back_inserter(diff));
    ASSERT_NE(ranking, nullptr) << diff.size() << " tokens differ (device " << device.size() << ", CPU "
                                << expected.size() << "), the first " << diff[0];
    ASSERT_TRUE(std::isfinite(ranking->threshold))
        << diff.size() << " tokens differ, but the CPU picked nothing";
    const bool tokens = pol.kind == PolicyKind::Oracle;
    const int n_items = static_cast<int>(ranking->scores.size());
    float largest = 0.0f;
    for (float x : ranking->scores) largest = std::max(largest, std::abs(x));
    const float tol = 1e-4f * largest;
    int bad = 0, last = -1, device_only = 0, cpu_only = 0;
    std::ostringstream first_bad;
    for (int t : diff) {
        const int item = tokens ? t : t / P;
        if (item == last) continue;  // a page's tokens differ together
        last = item;
        const bool on_device = std::binary_search(device.begin(), device.end(), t);
        const bool competes = item < n_items && !forced_item(pol, item, n_items);
        const float score = competes ? ranking->scores[static_cast<size_t>(item)] : 0.0f;
        if (competes) {
            if (on_device) {
                ++device_only;
            } else {
                ++cpu_only;
            }
            if (std::abs(score - ranking->threshold) <= tol) continue;
        }
        if (bad++ < 4) {
            first_bad << "\n  token " << t << " (item " << item << ") attended by the "
                      << (on_device ? "device" : "CPU") << " only: "
                      << (competes ? "score " + std::to_string(score) : std::string("not a competing item"));
        }
    }
    EXPECT_EQ(bad, 0) << "items outside the near ties (threshold " << ranking->threshold << ", tolerance "
                      << tol << ")" << first_bad.str();
    // Both pick the same number of items, so near ties swap them one for one; but an nsa page wholly inside
    // the window is attended either way, and its swap shows one item only.
    bool hidden = false;
    if (pol.kind == PolicyKind::Nsa)
        for (int j = 0; j < n_items; ++j)
            hidden = hidden || (!forced_item(pol, j, n_items) && j * P >= n - pol.window);
    if (!hidden) {
        EXPECT_EQ(device_only, cpu_only) << "items picked by one side only";
    }
}

struct CpuCheck {
    std::vector<std::vector<std::vector<int>>> positions;  // [n_seq][n_lists] the tokens each list attends
    int tied_lists = 0;  // sparse lists whose CPU threshold ties an item it did not pick, exactly
};

// Every list of a device selection against the CPU's selection of its head (exact, or allowing near ties),
// its `attended` count, and where the CPU is dense the block table itself.
CpuCheck check_against_cpu(const AttentionPolicy& pol, const Step& st, const DeviceLists& d, bool exact) {
    const bool per_head = pol.gqa == GqaMode::PerHead;
    const int G = st.group(), P = pol.page_size;
    EXPECT_EQ(d.n_lists, per_head ? st.n_heads : kKvHeads);
    CpuCheck check;
    check.positions.assign(static_cast<size_t>(st.n_seq()), std::vector<std::vector<int>>(d.n_lists));
    for (int s = 0; s < st.n_seq(); ++s) {
        const int n = st.kv.lengths[static_cast<size_t>(s)];
        const std::vector<int>& table = st.kv.pages[static_cast<size_t>(s)];
        for (int kvh = 0; kvh < kKvHeads; ++kvh) {
            const CpuGroup g = cpu_group(st, s, kvh);
            const GroupSelection sel = select_tokens(pol, 0, g.input());
            const bool ranks = !sel.dense && pol.kind != PolicyKind::Window;
            std::vector<std::vector<float>> rows;
            if (ranks) rows = cpu_ranked(pol, g);
            for (int h = 0; h < (per_head ? G : 1); ++h) {
                const int l = per_head ? kvh * G + h : kvh;
                SCOPED_TRACE("sequence " + std::to_string(s) + " (" + std::to_string(n) + " tokens), list " +
                             std::to_string(l) + (sel.dense ? ", dense" : ""));
                std::vector<int>& attended = check.positions[static_cast<size_t>(s)][static_cast<size_t>(l)];
                attended = list_positions(d, s, l, table, n, P);
                EXPECT_EQ(d.attended[d.list(s, l)], static_cast<int>(attended.size()));
                if (sel.dense) expect_block_table(d, s, l, table, n, P);
                Ranking ranking;
                if (ranks) {
                    ranking =
                        cpu_ranking(pol, std::move(rows[static_cast<size_t>(per_head ? h : 0)]), sel.head(h));
                    check.tied_lists += ranking.tied;
                }
                expect_same_tokens(pol, attended, sel.head(h), ranks && !exact ? &ranking : nullptr, n, P);
            }
        }
    }
    return check;
}

// ---- policies and batches ----

AttentionPolicy base_policy(PolicyKind kind, int P, GqaMode gqa) {
    AttentionPolicy p;
    p.kind = kind;
    p.page_size = P;
    p.dense_layers = 0;  // layer 0 is sparse
    p.gqa = gqa;
    return p;
}

AttentionPolicy quest(int P, int budget, GqaMode gqa, int sink_pages = 0, int recent_pages = 0) {
    AttentionPolicy p = base_policy(PolicyKind::Quest, P, gqa);
    p.budget = budget;
    p.sink_pages = sink_pages;
    p.recent_pages = recent_pages;
    return p;
}

AttentionPolicy nsa(int P, int init_blocks, int local_blocks, int top_n, int window, GqaMode gqa) {
    AttentionPolicy p = base_policy(PolicyKind::Nsa, P, gqa);
    p.init_blocks = init_blocks;
    p.local_blocks = local_blocks;
    p.top_n = top_n;
    p.window = window;
    return p;
}

AttentionPolicy window_policy(int P, int sink_tokens, int window, GqaMode gqa = GqaMode::Softmax) {
    AttentionPolicy p = base_policy(PolicyKind::Window, P, gqa);
    p.sink_tokens = sink_tokens;
    p.window = window;
    return p;
}

AttentionPolicy oracle(int P, int budget, GqaMode gqa) {
    AttentionPolicy p = base_policy(PolicyKind::Oracle, P, gqa);
    p.budget = budget;
    return p;
}

// Contexts up to this many tokens the policy attends densely (every page inside the budget, or the ranges
// covering everything).
int dense_tokens(const AttentionPolicy& pol) {
    switch (pol.kind) {
        case PolicyKind::Quest:
        case PolicyKind::Oracle:
            return pol.budget;
        case PolicyKind::Nsa:
            return (pol.top_n + 1) * pol.page_size;
        case PolicyKind::Window:
            return pol.sink_tokens + pol.window;
        case PolicyKind::Full:
            break;
    }
    return 0;
}

// Three sequences: one the policy attends densely, one just past that, one of over 200 pages.
std::vector<int> batch_lengths(Rng& rng, const AttentionPolicy& pol) {
    const int P = pol.page_size, dense = dense_tokens(pol);
    return {rng.integer(1, dense), dense + rng.integer(1, 3 * P), rng.integer(200 * P + 1, 230 * P)};
}

std::string describe(const AttentionPolicy& pol, const Shape& sh) {
    return describe_policy(pol) + ", D " + std::to_string(sh.head_dim) + ", G " + std::to_string(sh.group);
}

// ---- the cases ----

// Quest's group rows (ScoreRows::GroupSum, GroupMax): the row of each group's first head must hold the CPU's
// reduction (reduce_group_scores, from head 0) of the kernel's own per-head scores `per_head`, bit for bit,
// and the group's other rows nothing.
void check_group_rows(cuda::PageScoreParams p, const Step& st, const std::vector<uint32_t>& per_head,
                      int stride) {
    const int G = st.n_heads / kKvHeads, P = p.page_size;
    const size_t n_scores = static_cast<size_t>(st.n_seq()) * st.n_heads * stride;
    for (const auto& [rows, mode] : {std::pair{cuda::ScoreRows::GroupSum, GqaMode::Sum},
                                     std::pair{cuda::ScoreRows::GroupMax, GqaMode::Max}}) {
        SCOPED_TRACE(mode == GqaMode::Sum ? "group sum" : "group max");
        const cuda::DeviceBuffer d_scores = poisoned(n_scores * 4);
        p.scores = d_scores.as<float>();
        p.rows = rows;
        cuda::quest_score(p, nullptr);
        const std::vector<uint32_t> bits = from_device<uint32_t>(d_scores, n_scores);
        for (int s = 0; s < st.n_seq(); ++s) {
            const int n_items = (st.kv.lengths[static_cast<size_t>(s)] + P - 1) / P - 1;
            for (int kvh = 0; kvh < kKvHeads; ++kvh) {
                const size_t row0 = (static_cast<size_t>(s) * st.n_heads + kvh * G) * stride;
                std::vector<float> heads(static_cast<size_t>(G) * n_items);  // [G][n_items]
                for (int h = 0; h < G; ++h)
                    for (int i = 0; i < n_items; ++i)
                        heads[static_cast<size_t>(h) * n_items + i] =
                            std::bit_cast<float>(per_head[row0 + static_cast<size_t>(h) * stride + i]);
                const std::vector<float> want = reduce_group_scores(heads, G, mode, 1.0f);
                int bad = 0, written = 0;
                for (int i = 0; i < n_items; ++i)
                    bad += bits[row0 + i] != std::bit_cast<uint32_t>(want[static_cast<size_t>(i)]);
                for (int i = n_items; i < stride; ++i) written += bits[row0 + i] != 0xFFFFFFFFu;
                for (int h = 1; h < G; ++h)
                    for (int i = 0; i < stride; ++i)
                        written += bits[row0 + static_cast<size_t>(h) * stride + i] != 0xFFFFFFFFu;
                EXPECT_EQ(bad, 0) << "sequence " << s << " KV head " << kvh << ": of " << n_items << " items";
                EXPECT_EQ(written, 0)
                    << "sequence " << s << " KV head " << kvh << ": written outside the row";
            }
        }
    }
}

// The three score kernels against the CPU's scores, and nothing written past each sequence's items.
void run_score_case(Rng& rng, const Shape& sh, int P) {
    SCOPED_TRACE("D " + std::to_string(sh.head_dim) + ", G " + std::to_string(sh.group) + ", P " +
                 std::to_string(P));
    // A ragged last page, whole pages only (possibly one: no page competes), over 200 pages.
    const std::vector<int> lengths = {rng.integer(1, 10) * P + rng.integer(1, P - 1), rng.integer(1, 20) * P,
                                      rng.integer(201, 230) * P - rng.integer(0, P - 1)};
    const Step st = make_step(rng, lengths, sh, P);
    const DeviceStep dev(st);
    const int G = sh.group, max_tokens = st.max_tokens(), max_pages = (max_tokens + P - 1) / P;
    for (PolicyKind kind : {PolicyKind::Quest, PolicyKind::Nsa, PolicyKind::Oracle}) {
        SCOPED_TRACE(std::string(policy_kind_name(kind)));
        const int max_items = kind == PolicyKind::Oracle ? max_tokens : max_pages - 1;
        const int stride = max_items + 7;  // [max_items, stride): never written
        const size_t n_scores = static_cast<size_t>(st.n_seq()) * st.n_heads * stride;
        const cuda::DeviceBuffer d_scores = poisoned(n_scores * 4);  // [n_seq][n_heads][stride] fp32
        cuda::PageScoreParams p;
        p.q = dev.q.as<uint16_t>();
        p.kminmax = dev.kminmax.as<uint16_t>();
        p.ksum = dev.ksum.as<float>();
        p.count = dev.count.as<int32_t>();
        p.k_pool = dev.k.as<uint16_t>();
        p.block_tables = dev.tables.as<int32_t>();
        p.table_stride = dev.table_stride;
        p.seq_len = dev.seq_len.as<int32_t>();
        p.scores = d_scores.as<float>();
        p.score_stride = stride;
        p.max_items = max_items;
        p.n_seq = st.n_seq();
        p.n_heads = st.n_heads;
        p.n_kv_heads = kKvHeads;
        p.head_dim = sh.head_dim;
        p.page_size = P;
        if (kind == PolicyKind::Quest) cuda::quest_score(p, nullptr);
        if (kind == PolicyKind::Nsa) cuda::nsa_score(p, nullptr);
        if (kind == PolicyKind::Oracle) cuda::oracle_score(p, nullptr);
        const std::vector<uint32_t> bits = from_device<uint32_t>(d_scores, n_scores);

        for (int s = 0; s < st.n_seq(); ++s)
            for (int kvh = 0; kvh < kKvHeads; ++kvh) {
                const std::vector<float> ref = cpu_scores(kind, cpu_group(st, s, kvh));  // [G][n_items]
                const int n_items = static_cast<int>(ref.size()) / G;
                for (int h = 0; h < G; ++h) {
                    const size_t row = (static_cast<size_t>(s) * st.n_heads + kvh * G + h) * stride;
                    const float* want = ref.data() + static_cast<size_t>(h) * n_items;
                    // fp32 sums in another order: the error scales with the terms (O(1) here), not with
                    // the result, which a single item can make small (seen: 0.0200229 vs 0.0200226).
                    float largest = 1.0f;
                    for (int i = 0; i < n_items; ++i) largest = std::max(largest, std::abs(want[i]));
                    int bad = 0, written = 0;
                    std::ostringstream first_bad;
                    for (int i = 0; i < n_items; ++i) {
                        const float got = std::bit_cast<float>(bits[row + i]);
                        if (!(std::abs(got - want[i]) <= 1e-5f * largest) && bad++ == 0)
                            first_bad << "item " << i << ": " << got << " vs CPU " << want[i];
                    }
                    for (int i = n_items; i < stride; ++i) written += bits[row + i] != 0xFFFFFFFFu;
                    EXPECT_EQ(bad, 0)
                        << "sequence " << s << " head " << kvh * G + h << " (" << n_items
                        << " items, tolerance scale " << largest << "), first " << first_bad.str();
                    EXPECT_EQ(written, 0) << "sequence " << s << " head " << kvh * G + h
                                          << ": scores written past the " << n_items << " items";
                }
            }
        if (kind == PolicyKind::Quest) check_group_rows(p, st, bits, stride);
    }
}

// One policy through DeviceSelection on a fresh batch, every list against the CPU.
void run_selection_case(Rng& rng, const AttentionPolicy& pol, const Shape& sh) {
    SCOPED_TRACE(describe(pol, sh));
    const Step st = make_step(rng, batch_lengths(rng, pol), sh, pol.page_size);
    const DeviceStep dev(st);
    cuda::DeviceSelection sel(pol, st.n_seq(), st.n_heads, kKvHeads, sh.head_dim, st.max_tokens());
    check_against_cpu(pol, st, select_on_device(sel, dev, st.n_seq()), false);
}

const Shape kShapes[] = {{128, 4}, {64, 8}, {48, 1}, {16, 16}};

TEST(GpuPageSelect, ScoresMatchCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {16, 48, 64, 128})
        for (int G : {1, 4, 8})
            for (int P : {16, 64}) run_score_case(rng, {D, G}, P);
    run_score_case(rng, {128, 16}, 16);
}

TEST(GpuPageSelect, QuestMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (const Shape& sh : kShapes)
        for (int P : {16, 64})
            for (GqaMode gqa : {GqaMode::Sum, GqaMode::Max, GqaMode::Softmax, GqaMode::PerHead}) {
                run_selection_case(rng, quest(P, 16 * P, gqa), sh);
                run_selection_case(rng, quest(P, 16 * P, gqa, 1, 2), sh);
            }
}

TEST(GpuPageSelect, NsaMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (const Shape& sh : kShapes)
        for (GqaMode gqa : {GqaMode::Softmax, GqaMode::Sum, GqaMode::PerHead}) {
            run_selection_case(rng, nsa(64, 1, 2, 16, 512, gqa), sh);  // the preset's values
            run_selection_case(rng, nsa(16, 1, 2, 4, 40, gqa), sh);    // a window cutting pages
        }
}

TEST(GpuPageSelect, WindowMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (const Shape& sh : kShapes)
        for (int P : {16, 64}) {
            run_selection_case(rng, window_policy(P, 4, 100), sh);
            run_selection_case(rng, window_policy(P, 4, 100, GqaMode::PerHead), sh);
        }
}

TEST(GpuPageSelect, OracleMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (const Shape& sh : kShapes)
        for (int P : {16, 64})
            for (GqaMode gqa : {GqaMode::Sum, GqaMode::Max, GqaMode::Softmax, GqaMode::PerHead})
                run_selection_case(rng, oracle(P, 64, gqa), sh);
}

// Scores in three exactly tied classes: the device must pick exactly the CPU's set, the lower index first.
TEST(GpuPageSelect, ExactTiesPickTheLowerIndex) {
    DSA_REQUIRE_GPU();
    Rng rng;
    const AttentionPolicy policies[] = {
        quest(16, 256, GqaMode::Sum),
        quest(16, 256, GqaMode::Max),
        quest(16, 256, GqaMode::Softmax),
        quest(16, 256, GqaMode::PerHead, 1, 2),
        quest(64, 1024, GqaMode::Sum),
        nsa(16, 1, 2, 16, 40, GqaMode::Softmax),
        nsa(64, 1, 2, 16, 512, GqaMode::PerHead),
        oracle(16, 64, GqaMode::Sum),
        oracle(16, 64, GqaMode::Softmax),
        oracle(64, 64, GqaMode::PerHead),
    };
    for (const Shape& sh : {Shape{128, 4}, Shape{64, 1}})
        for (const AttentionPolicy& pol : policies) {
            SCOPED_TRACE(describe(pol, sh));
            const int P = pol.page_size;
            // Past the dense lengths of every policy above (17 pages), so each sequence ranks its pages.
            Step st = make_step(rng,
                                {rng.integer(17 * P + 1, 40 * P), rng.integer(40 * P + 1, 100 * P),
                                 rng.integer(200 * P + 1, 230 * P)},
                                sh, P);
            tie_pages(rng, st);
            const DeviceStep dev(st);
            cuda::DeviceSelection sel(pol, st.n_seq(), st.n_heads, kKvHeads, sh.head_dim, st.max_tokens());
            const CpuCheck check = check_against_cpu(pol, st, select_on_device(sel, dev, st.n_seq()), true);
            EXPECT_GT(check.tied_lists, 0) << "no list's threshold ties an item left out: no tie was broken";
        }
}

// Past 8192 items a list's keys no longer all fit in the selection CTA's registers (8 per thread): the rest
// go through the keys scratch, and a whole-page list writes those pages' entries from the block table
// directly. Quest and nsa without a window at P = 16 over more than 8192 pages (131K tokens), with and
// without exact ties, against the CPU.
TEST(GpuPageSelect, ListsPastTheRegisterHeldKeysMatchCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    const Shape sh{16, 4};
    const AttentionPolicy policies[] = {
        quest(16, 4096, GqaMode::Sum), quest(16, 4096, GqaMode::Softmax, 1, 2),
        quest(16, 2048, GqaMode::PerHead), nsa(16, 1, 2, 64, 0, GqaMode::Sum)};
    for (bool ties : {false, true})
        for (const AttentionPolicy& pol : policies) {
            SCOPED_TRACE(describe(pol, sh) + (ties ? ", tied pages" : ""));
            Step st =
                make_step(rng, {rng.integer(9000 * 16, 9500 * 16), rng.integer(400 * 16, 500 * 16)}, sh, 16);
            if (ties) tie_pages(rng, st);
            const DeviceStep dev(st);
            cuda::DeviceSelection sel(pol, st.n_seq(), st.n_heads, kKvHeads, sh.head_dim, st.max_tokens());
            check_against_cpu(pol, st, select_on_device(sel, dev, st.n_seq()), ties);
        }
}

// A policy covering every context of the batch (up to max_n tokens): every list is the block table itself,
// the entries full attention reads.
void run_covering_case(Rng& rng, const AttentionPolicy& pol, const Shape& sh, int max_n) {
    SCOPED_TRACE(describe(pol, sh));
    const int P = pol.page_size;
    const Step st = make_step(rng, {rng.integer(1, P), rng.integer(P + 1, max_n - 1), max_n}, sh, P);
    const DeviceStep dev(st);
    cuda::DeviceSelection sel(pol, st.n_seq(), st.n_heads, kKvHeads, sh.head_dim, st.max_tokens());
    const DeviceLists d = select_on_device(sel, dev, st.n_seq());
    for (int s = 0; s < st.n_seq(); ++s) {
        const int n = st.kv.lengths[static_cast<size_t>(s)];
        for (int kvh = 0; kvh < kKvHeads; ++kvh)
            EXPECT_TRUE(select_tokens(pol, 0, cpu_group(st, s, kvh).input()).dense)
                << "the case is meant to be dense: sequence " << s << " (" << n << " tokens)";
        for (int l = 0; l < d.n_lists; ++l) {
            SCOPED_TRACE("sequence " + std::to_string(s) + " (" + std::to_string(n) + " tokens), list " +
                         std::to_string(l));
            expect_block_table(d, s, l, st.kv.pages[static_cast<size_t>(s)], n, P);
            EXPECT_EQ(d.attended[d.list(s, l)], n);
        }
    }
}

TEST(GpuPageSelect, BudgetCoveringTheContextGivesTheBlockTable) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (const Shape& sh : {Shape{128, 4}, Shape{64, 8}})
        for (int P : {16, 64}) {
            for (const AttentionPolicy& pol :
                 {quest(P, 16 * P, GqaMode::Softmax), quest(P, 16 * P, GqaMode::PerHead, 1, 2),
                  nsa(P, 1, 2, 16, 4 * P, GqaMode::Softmax), oracle(P, 512, GqaMode::Softmax),
                  oracle(P, 512, GqaMode::PerHead), window_policy(P, 4, 300)})
                run_covering_case(rng, pol, sh, dense_tokens(pol));
            // More pages than top_n, but the window covers the pages not selected.
            run_covering_case(rng, nsa(P, 1, 1, 2, 300, GqaMode::Sum), sh, 300);
        }
}

// Decode attention (fused merge, bf16 output) over the lists DeviceSelection attaches, against the CPU's
// attention over the same positions.
void run_attention_case(Rng& rng, const AttentionPolicy& pol, const Shape& sh, int n_split, int min_tiles) {
    SCOPED_TRACE(describe(pol, sh) + ", splits " + std::to_string(n_split));
    const int D = sh.head_dim, G = sh.group;
    const Step st = make_step(rng, batch_lengths(rng, pol), sh, pol.page_size);
    const DeviceStep dev(st);
    cuda::DeviceSelection sel(pol, st.n_seq(), st.n_heads, kKvHeads, D, st.max_tokens());
    // What the lists attend: the CPU's selection (checked here), but for near ties.
    const auto positions =
        check_against_cpu(pol, st, select_on_device(sel, dev, st.n_seq()), false).positions;

    const bool per_head = pol.gqa == GqaMode::PerHead;
    const size_t rows = static_cast<size_t>(st.n_seq()) * st.n_heads;
    const size_t tickets =
        static_cast<size_t>(st.n_seq()) * (per_head ? st.n_heads : kKvHeads * ((G + 15) / 16));
    const cuda::DeviceBuffer d_o = poisoned(rows * n_split * D * 4);  // [n_seq][n_heads][n_split][D] fp32
    const cuda::DeviceBuffer d_lse = poisoned(rows * n_split * 4);    // [n_seq][n_heads][n_split] fp32
    const cuda::DeviceBuffer d_out = poisoned(rows * D * 2);          // [n_seq][n_heads][D] bf16
    const cuda::DeviceBuffer d_counters = to_device(std::vector<int32_t>(tickets, 0));
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    cuda::DecodeAttentionParams p;
    sel.attach(p);
    p.q = dev.q.as<uint16_t>();
    p.k_pool = dev.k.as<uint16_t>();
    p.v_pool = dev.v.as<uint16_t>();
    p.seq_len = dev.seq_len.as<int32_t>();
    p.o_part = d_o.as<float>();
    p.lse_part = d_lse.as<float>();
    p.n_seq = st.n_seq();
    p.n_heads = st.n_heads;
    p.n_kv_heads = kKvHeads;
    p.head_dim = D;
    p.page_size = pol.page_size;
    p.n_split = n_split;
    p.min_tiles_per_split = min_tiles;
    p.scale = scale;
    p.out = d_out.get();
    p.out_dtype = DType::BF16;
    p.counters = d_counters.as<int32_t>();
    cuda::decode_attention(p, nullptr);
    const std::vector<float> out = from_device_as_f32(d_out, DType::BF16, rows * D);

    for (int s = 0; s < st.n_seq(); ++s)
        for (int h = 0; h < st.n_heads; ++h) {
            const size_t r = static_cast<size_t>(s) * st.n_heads + h;
            const int l = per_head ? h : h / G;
            std::vector<float> ref(static_cast<size_t>(D));
            reference_attention(st.kv, s, h / G, st.q.values.data() + r * D,
                                positions[static_cast<size_t>(s)][static_cast<size_t>(l)], scale, ref.data());
            const std::vector<float> got(out.begin() + static_cast<std::ptrdiff_t>(r * D),
                                         out.begin() + static_cast<std::ptrdiff_t>((r + 1) * D));
            EXPECT_LE(rel_error(got, ref), 1e-2) << "sequence " << s << " head " << h;
        }
}

TEST(GpuPageSelect, AttentionOverTheListsMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    int sm_count = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
    const AttentionPolicy policies[] = {
        quest(16, 256, GqaMode::Sum),           quest(16, 256, GqaMode::PerHead, 1, 2),
        quest(64, 1024, GqaMode::Softmax),      nsa(64, 1, 2, 16, 512, GqaMode::Softmax),
        nsa(16, 1, 2, 4, 40, GqaMode::PerHead), window_policy(16, 4, 100),
        oracle(16, 64, GqaMode::Softmax),       oracle(64, 64, GqaMode::PerHead),
    };
    for (const Shape& sh : {Shape{128, 4}, Shape{64, 8}, Shape{16, 1}})
        for (const AttentionPolicy& pol : policies) {
            run_attention_case(rng, pol, sh,
                               cuda::decode_attention_splits(3, kKvHeads * sh.group, kKvHeads, sm_count), 4);
            run_attention_case(rng, pol, sh, 4, 1);
        }
}

}  // namespace
}  // namespace dsa::test
