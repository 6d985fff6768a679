// q/k/v bias + per-head q/k RMSNorm + RoPE + paged K/V append, and the page metadata update, against CPU
// references. Slots the chunk does not own must stay untouched (NaN poison).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "gpu_test_util.h"
#include "kernels/attention_input.h"
#include "kernels/kv_metadata.h"
#include "paged_kv_fixture.h"

namespace dsa::test {
namespace {

struct InputCase {
    int head_dim, page_size;
    bool bias, qk_norm;
    int n_seq = 1;  // > 1: a batched decode step, one token per sequence at its own position and pages
};

void run_input_case(Rng& rng, const InputCase& c) {
    const int n_heads = 8, n_kv_heads = 2, D = c.head_dim, P = c.page_size, half = D / 2;
    const int T = c.n_seq > 1 ? c.n_seq : rng.integer(1, 40), per_seq = T / c.n_seq;
    std::vector<int32_t> starts(static_cast<size_t>(c.n_seq));
    for (int32_t& s : starts) s = rng.integer(0, 100);
    const int row = (n_heads + 2 * n_kv_heads) * D;
    // Each sequence's table: its own pages of one shuffled pool.
    const int stride = (100 + per_seq + P - 1) / P + 1, num_pages = stride * c.n_seq + 4;
    std::vector<int32_t> pool_ids(static_cast<size_t>(num_pages));
    std::iota(pool_ids.begin(), pool_ids.end(), 0);
    std::shuffle(pool_ids.begin(), pool_ids.end(), rng.gen());
    const std::vector<int32_t> table(pool_ids.begin(), pool_ids.begin() + stride * c.n_seq);
    auto page_of = [&](int t, int pos) { return table[static_cast<size_t>(t / per_seq) * stride + pos / P]; };
    auto pos_of = [&](int t) { return starts[static_cast<size_t>(t / per_seq)] + t % per_seq; };

    const auto qkv = rng.normals(static_cast<size_t>(T) * row);
    const auto bias = rng.normals(static_cast<size_t>(row), 0.3f);
    std::vector<float> q_norm(D), k_norm(D), inv_freq(half);
    for (float& x : q_norm) x = rng.uniform(0.5f, 1.5f);
    for (float& x : k_norm) x = rng.uniform(0.5f, 1.5f);
    for (int i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / D);
    const float scaling = c.bias ? 1.2f : 1.0f, eps = 1e-6f;

    auto d_qkv = to_device(qkv), d_bias = to_device(bias), d_qn = to_device(q_norm), d_kn = to_device(k_norm);
    auto d_freq = to_device(inv_freq), d_table = to_device(table);
    auto d_start = to_device(starts);
    const size_t pool = static_cast<size_t>(num_pages) * n_kv_heads * P * D;
    auto d_q = poisoned(static_cast<size_t>(T) * n_heads * D * 2), d_k = poisoned(pool * 2),
         d_v = poisoned(pool * 2);

    cuda::AttentionInputParams p;
    p.qkv = d_qkv.as<float>();
    p.bias = c.bias ? d_bias.as<float>() : nullptr;
    p.q_norm = c.qk_norm ? d_qn.as<float>() : nullptr;
    p.k_norm = c.qk_norm ? d_kn.as<float>() : nullptr;
    p.inv_freq = d_freq.as<float>();
    p.rope_scaling = scaling;
    p.norm_eps = eps;
    p.start_pos = d_start.as<int32_t>();
    p.block_tables = d_table.as<int32_t>();
    p.table_stride = stride;
    p.q_out = d_q.as<uint16_t>();
    p.k_pool = d_k.as<uint16_t>();
    p.v_pool = d_v.as<uint16_t>();
    p.n_tokens = T;
    p.n_seq = c.n_seq;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv_heads;
    p.head_dim = D;
    p.page_size = P;
    cuda::attention_input(p, nullptr);
    const auto q_out = from_device<uint16_t>(d_q, static_cast<size_t>(T) * n_heads * D);
    const auto k_out = from_device<uint16_t>(d_k, pool), v_out = from_device<uint16_t>(d_v, pool);

    // CPU: bias, norm, rotate-half RoPE in double.
    auto prepare = [&](int t, int h, bool rotate, const std::vector<float>* norm) {
        std::vector<double> x(D);
        for (int d = 0; d < D; ++d)
            x[d] = qkv[static_cast<size_t>(t) * row + h * D + d] +
                   (c.bias ? bias[static_cast<size_t>(h) * D + d] : 0.0f);
        if (norm) {
            double ss = 0;
            for (double v : x) ss += v * v;
            const double inv = 1.0 / std::sqrt(ss / D + eps);
            for (int d = 0; d < D; ++d) x[d] *= inv * (*norm)[d];
        }
        if (rotate) {
            const double pos = pos_of(t);
            for (int i = 0; i < half; ++i) {
                const double a = static_cast<double>(static_cast<float>(pos) * inv_freq[i]);
                const double cs = std::cos(a) * scaling, sn = std::sin(a) * scaling;
                const double x0 = x[i], x1 = x[i + half];
                x[i] = x0 * cs - x1 * sn;
                x[i + half] = x1 * cs + x0 * sn;
            }
        }
        return std::vector<float>(x.begin(), x.end());
    };
    std::vector<float> got, ref;
    std::vector<char> written(pool, 0);
    for (int t = 0; t < T; ++t) {
        for (int h = 0; h < n_heads; ++h) {
            const auto r = prepare(t, h, true, c.qk_norm ? &q_norm : nullptr);
            for (int d = 0; d < D; ++d) {
                ref.push_back(r[d]);
                got.push_back(bf16_to_f32(q_out[(static_cast<size_t>(t) * n_heads + h) * D + d]));
            }
        }
        const int pos = pos_of(t);
        for (int h = 0; h < n_kv_heads; ++h) {
            const auto rk = prepare(t, n_heads + h, true, c.qk_norm ? &k_norm : nullptr);
            const auto rv = prepare(t, n_heads + n_kv_heads + h, false, nullptr);
            const size_t base = ((static_cast<size_t>(page_of(t, pos)) * n_kv_heads + h) * P + pos % P) * D;
            for (int d = 0; d < D; ++d) {
                ref.push_back(rk[d]);
                got.push_back(bf16_to_f32(k_out[base + d]));
                ref.push_back(rv[d]);
                got.push_back(bf16_to_f32(v_out[base + d]));
                written[base + d] = 1;
            }
        }
    }
    EXPECT_LE(rel_error(got, ref), 1e-2)
        << "D " << D << " P " << P << " bias " << c.bias << " norm " << c.qk_norm << " n_seq " << c.n_seq;
    size_t touched = 0;
    for (size_t i = 0; i < pool; ++i)
        touched += !written[i] && (k_out[i] != kBf16Nan || v_out[i] != kBf16Nan);
    EXPECT_EQ(touched, 0u) << "slots outside the chunk were written";
}

TEST(GpuAttentionInput, BiasNormRopeAppendMatchCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {16, 48, 64, 128})
        for (int P : {16, 64})
            for (bool bias : {false, true})
                for (bool norm : {false, true}) run_input_case(rng, {D, P, bias, norm});
}

TEST(GpuAttentionInput, BatchedDecodeTokensGoToTheirOwnSequences) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {64, 128})
        for (int n_seq : {2, 5}) run_input_case(rng, {D, 16, true, true, n_seq});
}

// Decode appends one token at a time with the metadata update fused into attention_input; the metadata must
// equal min/max/sum/count over the keys as cached.
TEST(GpuKvMetadata, SingleTokenAppendsUpdateMetadata) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {48, 128})
        for (int P : {16, 64}) {
            const int n_heads = 4, n_kv_heads = 2, n = rng.integer(2 * P + 1, 3 * P),
                      row = (n_heads + 2 * n_kv_heads) * D;
            const int num_pages = (n + P - 1) / P + 2;
            std::vector<int32_t> table(static_cast<size_t>(num_pages));
            std::iota(table.begin(), table.end(), 0);
            std::shuffle(table.begin(), table.end(), rng.gen());
            std::vector<float> inv_freq(D / 2);
            for (int i = 0; i < D / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / D);
            auto d_freq = to_device(inv_freq), d_table = to_device(table);
            const size_t pool = static_cast<size_t>(num_pages) * n_kv_heads * P * D;
            const size_t meta = static_cast<size_t>(num_pages) * n_kv_heads * D;
            auto d_q = poisoned(static_cast<size_t>(n_heads) * D * 2), d_k = poisoned(pool * 2),
                 d_v = poisoned(pool * 2);
            auto d_minmax = poisoned(2 * meta * 2), d_sum = poisoned(meta * 4);
            auto d_count = poisoned(static_cast<size_t>(num_pages) * n_kv_heads * 4);
            for (int pos = 0; pos < n; ++pos) {
                auto d_qkv = to_device(rng.normals(static_cast<size_t>(row)));
                auto d_start = to_device(std::vector<int32_t>{pos});
                cuda::AttentionInputParams p;
                p.qkv = d_qkv.as<float>();
                p.inv_freq = d_freq.as<float>();
                p.start_pos = d_start.as<int32_t>();
                p.block_tables = d_table.as<int32_t>();
                p.q_out = d_q.as<uint16_t>();
                p.k_pool = d_k.as<uint16_t>();
                p.v_pool = d_v.as<uint16_t>();
                p.kminmax = d_minmax.as<uint16_t>();
                p.ksum = d_sum.as<float>();
                p.count = d_count.as<int32_t>();
                p.n_tokens = 1;
                p.n_heads = n_heads;
                p.n_kv_heads = n_kv_heads;
                p.head_dim = D;
                p.page_size = P;
                cuda::attention_input(p, nullptr);
                CUDA_CHECK(cudaDeviceSynchronize());
            }
            const auto k = from_device<uint16_t>(d_k, pool);
            const auto minmax = from_device<uint16_t>(d_minmax, 2 * meta);  // [pages][heads][2][D] bf16
            const auto sum = from_device<float>(d_sum, meta);
            const auto count = from_device<int32_t>(d_count, static_cast<size_t>(num_pages) * n_kv_heads);
            for (int b = 0; b * P < n; ++b) {
                const int valid = std::min(P, n - b * P);
                for (int h = 0; h < n_kv_heads; ++h) {
                    const size_t mi = static_cast<size_t>(table[b]) * n_kv_heads + h;
                    ASSERT_EQ(count[mi], valid);
                    for (int d = 0; d < D; ++d) {
                        float rmin = INFINITY, rmax = -INFINITY, rsum = 0.0f;
                        for (int s = 0; s < valid; ++s) {
                            const float v = bf16_to_f32(k[(mi * P + s) * D + d]);
                            rmin = std::min(rmin, v);
                            rmax = std::max(rmax, v);
                            rsum += v;
                        }
                        ASSERT_EQ(bf16_to_f32(minmax[mi * 2 * D + d]), rmin);
                        ASSERT_EQ(bf16_to_f32(minmax[mi * 2 * D + D + d]), rmax);
                        ASSERT_EQ(sum[mi * D + d], rsum);
                    }
                }
            }
        }
}

TEST(GpuKvMetadata, ChunkedAppendsMatchCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {64, 128})
        for (int P : {16, 64}) {
            const int n_kv_heads = 2, total = rng.integer(3 * P, 5 * P);
            PagedKv kv = make_paged_kv(rng, {total}, n_kv_heads, P, D);
            auto d_k = to_device(kv.k);
            auto d_table = to_device(std::vector<int32_t>(kv.pages[0].begin(), kv.pages[0].end()));
            const size_t meta = static_cast<size_t>(kv.num_pages) * n_kv_heads * D;
            auto d_minmax = poisoned(2 * meta * 2), d_sum = poisoned(meta * 4);
            auto d_count = poisoned(static_cast<size_t>(kv.num_pages) * n_kv_heads * 4);
            // Appends in chunks of 1 token, less than a page, several pages: every alignment.
            for (int start = 0; start < total;) {
                const int n =
                    std::min(total - start, std::vector<int>{1, P - 3, 2 * P + 5, 7}[rng.integer(0, 3)]);
                auto d_start = to_device(std::vector<int32_t>{start});
                cuda::KvMetadataParams p;
                p.k_pool = d_k.as<uint16_t>();
                p.kminmax = d_minmax.as<uint16_t>();
                p.ksum = d_sum.as<float>();
                p.count = d_count.as<int32_t>();
                p.start_pos = d_start.as<int32_t>();
                p.block_table = d_table.as<int32_t>();
                p.n_tokens = n;
                p.n_kv_heads = n_kv_heads;
                p.head_dim = D;
                p.page_size = P;
                cuda::kv_metadata_update(p, nullptr);
                CUDA_CHECK(cudaDeviceSynchronize());
                start += n;
            }
            const auto minmax = from_device<uint16_t>(d_minmax, 2 * meta);  // [pages][heads][2][D] bf16
            const auto sum = from_device<float>(d_sum, meta);
            const auto count = from_device<int32_t>(d_count, static_cast<size_t>(kv.num_pages) * n_kv_heads);
            for (size_t b = 0; b < kv.pages[0].size(); ++b) {
                const int page = kv.pages[0][b];
                const int valid = std::min(P, total - static_cast<int>(b) * P);
                for (int h = 0; h < n_kv_heads; ++h) {
                    const size_t mi = static_cast<size_t>(page) * n_kv_heads + h;
                    ASSERT_EQ(count[mi], valid);
                    for (int d = 0; d < D; ++d) {
                        float rmin = INFINITY, rmax = -INFINITY, rsum = 0.0f;  // same order as the kernel
                        for (int s = 0; s < valid; ++s) {
                            const float v = kv.kf(kv.index(page, h, s) + d);
                            rmin = std::min(rmin, v);
                            rmax = std::max(rmax, v);
                            rsum += v;
                        }
                        ASSERT_EQ(bf16_to_f32(minmax[mi * 2 * D + d]), rmin);
                        ASSERT_EQ(bf16_to_f32(minmax[mi * 2 * D + D + d]), rmax);
                        ASSERT_NEAR(sum[mi * D + d], rsum, 1e-5f * valid);
                    }
                }
            }
        }
}

}  // namespace
}  // namespace dsa::test
