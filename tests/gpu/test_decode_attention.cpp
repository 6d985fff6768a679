// Split-KV GQA decode attention (+ the log-sum-exp merge) against a double-precision CPU reference:
// head_dim 64/128 (and the test models' 16/48), group sizes 1/4/8, page sizes 16/64, ragged last pages,
// contexts of many pages, batches of sequences with different lengths, several split counts, and per-head
// sparse page lists with token ranges (what the sparse policies pass).
#include <gtest/gtest.h>

#include <cmath>

#include "gpu_test_util.h"
#include "kernels/attention_merge.h"
#include "kernels/decode_attention.h"
#include "paged_kv_fixture.h"

namespace dsa::test {
namespace {

struct DecodeCase {
    int head_dim, group, page_size;
};

// One sparse list entry: a page of the sequence and the token range [lo, hi) of it that is attended.
struct Entry {
    int page_index, lo, hi;
};

void run_decode_case(Rng& rng, const DecodeCase& c, bool sparse, int n_split, int min_tiles,
                     bool fused = false) {
    const int n_kv_heads = 2, n_heads = n_kv_heads * c.group, D = c.head_dim, P = c.page_size;
    const int n_seq = 3;
    std::vector<int> lengths = {rng.integer(1, 40), rng.integer(1, 12) * P, rng.integer(20 * P, 60 * P)};
    if (sparse) lengths[0] = rng.integer(3 * P, 10 * P);  // a few pages to choose from
    PagedKv kv = make_paged_kv(rng, lengths, n_kv_heads, P, D);
    const Typed q = make_typed(rng.normals(static_cast<size_t>(n_seq) * n_heads * D, 2.0f), DType::BF16);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));

    // Lists: the block tables (shared by the heads), or per-(sequence, head) random page subsets with token
    // ranges, the sequence's last page always last.
    const int max_pages = (*std::max_element(lengths.begin(), lengths.end()) + P - 1) / P;
    std::vector<int32_t> lists(static_cast<size_t>(n_seq) * n_kv_heads * max_pages, -1);
    std::vector<int32_t> ranges(lists.size(), 0), list_len(static_cast<size_t>(n_seq) * n_kv_heads, 0);
    std::vector<std::vector<std::vector<int>>> positions(n_seq, std::vector<std::vector<int>>(n_kv_heads));
    for (int s = 0; s < n_seq; ++s) {
        const int n_pages = (lengths[s] + P - 1) / P;
        for (int h = 0; h < n_kv_heads; ++h) {
            std::vector<Entry> entries;
            for (int p = 0; p < n_pages; ++p) {
                const int valid = std::min(P, lengths[s] - p * P);
                if (!sparse) {
                    entries.push_back({p, 0, valid});
                } else if (p == n_pages - 1 || rng.integer(0, 2) == 0) {
                    int lo = rng.integer(0, valid - 1), hi = rng.integer(lo + 1, valid);
                    if (p == n_pages - 1) hi = valid;
                    entries.push_back({p, lo, hi});
                }
            }
            const size_t base = (static_cast<size_t>(s) * n_kv_heads + h) * max_pages;
            for (size_t e = 0; e < entries.size(); ++e) {
                lists[base + e] = kv.pages[s][entries[e].page_index];
                ranges[base + e] = entries[e].lo | (entries[e].hi << 16);
                for (int t = entries[e].lo; t < entries[e].hi; ++t)
                    positions[s][h].push_back(entries[e].page_index * P + t);
            }
            list_len[static_cast<size_t>(s) * n_kv_heads + h] = static_cast<int>(entries.size());
        }
    }

    auto d_k = to_device(kv.k), d_v = to_device(kv.v), d_q = to_device(q.bytes);
    auto d_lists = to_device(lists), d_ranges = to_device(ranges), d_len = to_device(list_len);
    auto d_seq_len = to_device(std::vector<int32_t>(lengths.begin(), lengths.end()));
    const size_t rows = static_cast<size_t>(n_seq) * n_heads;
    auto d_o = poisoned(rows * n_split * D * 4), d_lse = poisoned(rows * n_split * 4);
    auto d_out = poisoned(rows * D * 4);

    cuda::DecodeAttentionParams p;
    p.q = d_q.as<uint16_t>();
    p.k_pool = d_k.as<uint16_t>();
    p.v_pool = d_v.as<uint16_t>();
    p.page_lists = d_lists.as<int32_t>();
    p.list_seq_stride = static_cast<int64_t>(n_kv_heads) * max_pages;
    p.list_head_stride = max_pages;
    if (sparse) {
        p.slot_ranges = d_ranges.as<int32_t>();
        p.list_len = d_len.as<int32_t>();
    }
    p.seq_len = d_seq_len.as<int32_t>();
    p.o_part = d_o.as<float>();
    p.lse_part = d_lse.as<float>();
    p.n_seq = n_seq;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv_heads;
    p.head_dim = D;
    p.page_size = P;
    p.n_split = n_split;
    p.min_tiles_per_split = min_tiles;
    p.scale = scale;
    const int head_chunks = (c.group + 15) / 16;
    auto d_counters =
        to_device(std::vector<int32_t>(static_cast<size_t>(n_seq) * n_kv_heads * head_chunks, 0));
    std::vector<float> out;
    if (fused) {
        p.out = d_out.get();
        p.out_dtype = DType::F32;
        p.counters = d_counters.as<int32_t>();
        cuda::decode_attention(p, nullptr);
        // A second launch must find the counters reset by the first.
        const auto first = from_device<float>(d_out, rows * D);
        CUDA_CHECK(cudaMemset(d_out.get(), 0xFF, rows * D * 4));
        cuda::decode_attention(p, nullptr);
        out = from_device<float>(d_out, rows * D);
        EXPECT_EQ(first, out) << "second launch differs";
        EXPECT_EQ(from_device<int32_t>(d_counters, static_cast<size_t>(n_seq) * n_kv_heads * head_chunks),
                  std::vector<int32_t>(static_cast<size_t>(n_seq) * n_kv_heads * head_chunks, 0));
    } else {
        cuda::decode_attention(p, nullptr);
        cuda::attention_merge(d_o.as<float>(), d_lse.as<float>(), d_out.get(), DType::F32,
                              static_cast<int>(rows), n_split, D, nullptr);
        out = from_device<float>(d_out, rows * D);
    }

    std::vector<float> ref(rows * D);
    for (int s = 0; s < n_seq; ++s)
        for (int h = 0; h < n_heads; ++h) {
            const size_t r = static_cast<size_t>(s) * n_heads + h;
            reference_attention(kv, s, h / c.group, q.values.data() + r * D, positions[s][h / c.group], scale,
                                ref.data() + r * D);
        }
    // bf16 operands, P rounded to bf16 before P.V: about 3e-3 expected.
    EXPECT_LE(rel_error(out, ref), 1e-2)
        << "D " << D << " G " << c.group << " P " << P << " sparse " << sparse << " splits " << n_split
        << " min tiles " << min_tiles << " fused " << fused;
}

TEST(GpuDecodeAttention, FullListsMatchCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    int sm_count = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
    for (int D : {64, 128})
        for (int G : {1, 4, 8})
            for (int P : {16, 64}) {
                const int splits = cuda::decode_attention_splits(3, 2 * G, 2, sm_count);
                run_decode_case(rng, {D, G, P}, false, splits, 4);
                run_decode_case(rng, {D, G, P}, false, 1, 1);
                run_decode_case(rng, {D, G, P}, false, 7, 1);
            }
}

TEST(GpuDecodeAttention, FusedMergeMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    int sm_count = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
    for (int D : {64, 128})
        for (int G : {1, 4, 8})
            for (int P : {16, 64}) {
                run_decode_case(rng, {D, G, P}, false, cuda::decode_attention_splits(3, 2 * G, 2, sm_count),
                                4, true);
                run_decode_case(rng, {D, G, P}, true, 9, 1, true);
            }
    run_decode_case(rng, {48, 20, 16}, false, 5, 1, true);
}

TEST(GpuDecodeAttention, SparseListsWithTokenRangesMatchCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {64, 128})
        for (int G : {1, 4, 8})
            for (int P : {16, 64}) run_decode_case(rng, {D, G, P}, true, 5, 1);
}

TEST(GpuDecodeAttention, SmallHeadDimsOfTheTestModels) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {16, 48, 96})
        for (int G : {1, 2, 3}) run_decode_case(rng, {D, G, 16}, false, 6, 1);
}

TEST(GpuDecodeAttention, GroupsLargerThanSixteenHeads) {
    DSA_REQUIRE_GPU();
    Rng rng;
    run_decode_case(rng, {64, 20, 16}, false, 4, 1);
}

}  // namespace
}  // namespace dsa::test
