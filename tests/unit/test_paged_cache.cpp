// The fp32 paged KV cache: stored K/V and per-page metadata (kmin/kmax/ksum/count) against a brute-force
// recomputation over the keys each sequence appended, after prefill and decode appends with partial pages,
// page reuse after release, and a cache-full error that leaves the sequence as it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "kv/paged_cache.h"
#include "util/error.h"

namespace dsa {
namespace {

constexpr int kLayers = 2, kHeads = 3, kDim = 8, kPage = 16;

KvCacheShape small_shape(int num_pages) {
    KvCacheShape s;
    s.n_layers = kLayers;
    s.n_kv_heads = kHeads;
    s.head_dim = kDim;
    s.page_size = kPage;
    s.num_pages = num_pages;
    return s;
}

// A sequence plus everything appended to it: keys/values [layer][pos][head][dim].
struct Tracked {
    Sequence seq;
    std::vector<std::vector<float>> k = std::vector<std::vector<float>>(kLayers);
    std::vector<std::vector<float>> v = std::vector<std::vector<float>>(kLayers);
};

void append_tokens(PagedKvCache& cache, Tracked& s, int n, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 2.0f);
    cache.reserve(s.seq, s.seq.n_tokens + n);
    for (int i = 0; i < n; ++i) {
        const int pos = s.seq.n_tokens;
        for (int l = 0; l < kLayers; ++l) {
            std::vector<float> k(kHeads * kDim), v(kHeads * kDim);  // [n_kv_heads][head_dim]
            for (float& x : k) x = dist(rng);
            for (float& x : v) x = dist(rng);
            cache.append(l, s.seq, pos, k.data(), v.data());
            s.k[l].insert(s.k[l].end(), k.begin(), k.end());
            s.v[l].insert(s.v[l].end(), v.begin(), v.end());
        }
        s.seq.n_tokens = pos + 1;
    }
}

void expect_matches_brute_force(const PagedKvCache& cache, const Tracked& s) {
    const int n = s.seq.n_tokens;
    for (int l = 0; l < kLayers; ++l) {
        for (size_t pi = 0; pi * kPage < static_cast<size_t>(n); ++pi) {
            const int page = s.seq.pages[pi];
            const int valid = std::min(kPage, n - static_cast<int>(pi) * kPage);
            for (int h = 0; h < kHeads; ++h) {
                const PageMetaView m = cache.meta(l, page, h);
                ASSERT_EQ(*m.count, valid) << "layer " << l << " page " << pi << " head " << h;
                for (int d = 0; d < kDim; ++d) {
                    float mn = 0, mx = 0, sum = 0;
                    for (int j = 0; j < valid; ++j) {
                        const size_t src = (static_cast<size_t>(pi * kPage + j) * kHeads + h) * kDim + d;
                        const float key = s.k[l][src];
                        EXPECT_EQ(cache.k(l, page, h)[j * kDim + d], key);
                        EXPECT_EQ(cache.v(l, page, h)[j * kDim + d], s.v[l][src]);
                        mn = j == 0 ? key : std::min(mn, key);
                        mx = j == 0 ? key : std::max(mx, key);
                        sum += key;
                    }
                    EXPECT_EQ(m.kmin[d], mn);
                    EXPECT_EQ(m.kmax[d], mx);
                    EXPECT_NEAR(m.ksum[d], sum, 1e-5f * valid * 4);
                }
            }
        }
    }
}

TEST(PagedCache, MetadataEqualsBruteForceAfterPrefillAndDecode) {
    PagedKvCache cache(small_shape(12));
    std::mt19937 rng(7);
    Tracked a, b;
    append_tokens(cache, a, 37, rng);  // prefill: two full pages and a partial one
    expect_matches_brute_force(cache, a);
    append_tokens(cache, b, 5, rng);         // another sequence takes the next page
    for (int step = 0; step < 30; ++step) {  // decode: one token at a time, interleaved, crossing pages
        append_tokens(cache, a, 1, rng);
        if (step % 3 == 0) append_tokens(cache, b, 1, rng);
        expect_matches_brute_force(cache, a);
        expect_matches_brute_force(cache, b);
    }
    EXPECT_EQ(a.seq.n_tokens, 67);
    EXPECT_EQ(a.seq.pages.size(), 5u);
}

TEST(PagedCache, ReusedPageStartsFreshMetadata) {
    PagedKvCache cache(small_shape(4));
    std::mt19937 rng(11);
    Tracked a;
    append_tokens(cache, a, 40, rng);
    const std::vector<int> pages_of_a = a.seq.pages;
    cache.release(a.seq);
    EXPECT_TRUE(a.seq.pages.empty());
    EXPECT_EQ(a.seq.n_tokens, 0);
    EXPECT_EQ(cache.free_pages(), 4);
    Tracked b;
    append_tokens(cache, b, 3, rng);
    EXPECT_EQ(b.seq.pages[0], pages_of_a[0]);  // reused in the same order
    expect_matches_brute_force(cache, b);
}

TEST(PagedCache, FullCacheThrowsAndLeavesSequenceUnchanged) {
    PagedKvCache cache(small_shape(3));
    std::mt19937 rng(3);
    Tracked a;
    append_tokens(cache, a, 20, rng);
    const Sequence before = a.seq;
    const int free_before = cache.free_pages();
    EXPECT_THROW(cache.reserve(a.seq, 49), Error);
    EXPECT_EQ(a.seq.pages, before.pages);
    EXPECT_EQ(a.seq.n_tokens, before.n_tokens);
    EXPECT_EQ(cache.free_pages(), free_before);
    try {
        cache.reserve(a.seq, 49);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("KV cache full"), std::string::npos) << e.what();
    }
    cache.reserve(a.seq, 48);  // exactly the capacity still fits
    EXPECT_EQ(a.seq.pages.size(), 3u);
    expect_matches_brute_force(cache, a);
}

TEST(PagedCache, BytesPerPage) {
    PagedKvCache cache(small_shape(2));
    EXPECT_EQ(cache.kv_bytes_per_page_layer(), 2u * kHeads * kPage * kDim * 4);
    EXPECT_EQ(cache.meta_bytes_per_page_layer(), kHeads * (3u * kDim * 4 + 4));
    EXPECT_EQ(PagedKvCache::total_bytes(small_shape(2)),
              2u * kLayers * (cache.kv_bytes_per_page_layer() + cache.meta_bytes_per_page_layer()));
    EXPECT_EQ(cache.capacity_tokens(), 2 * kPage);
}

TEST(PagedCache, RejectsUnsupportedPageSize) {
    KvCacheShape s = small_shape(2);
    s.page_size = 24;
    EXPECT_THROW(PagedKvCache{s}, Error);
}

}  // namespace
}  // namespace dsa
