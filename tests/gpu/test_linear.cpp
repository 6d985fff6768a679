// Projections: the GEMV kernel (one row) and cuBLAS (several rows) against a double-precision CPU product,
// with beta 0 (overwrite) and beta 1 (accumulate into the residual); the GEMV's fused RMSNorm, SwiGLU and
// attention input against the separate kernels (themselves checked against the CPU in
// test_elementwise_kernels.cpp and test_attention_input.cpp), in every variant, persistent ones included.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "backend/cuda/linear.h"
#include "gpu_test_util.h"
#include "kernels/argmax.h"
#include "kernels/attention_input.h"
#include "kernels/gemv.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

namespace dsa::test {
namespace {

void check_linear(Rng& rng, DType t, int m, int n, int k, float beta) {
    const Typed x = make_typed(rng.normals(static_cast<size_t>(m) * k), t);
    const Typed w = make_typed(rng.normals(static_cast<size_t>(n) * k, 0.05f), t);
    const auto y0 = rng.normals(static_cast<size_t>(m) * n);
    std::vector<float> ref(static_cast<size_t>(m) * n);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double s = 0;
            for (int c = 0; c < k; ++c)
                s += double(x.values[size_t(i) * k + c]) * w.values[size_t(j) * k + c];
            ref[size_t(i) * n + j] =
                static_cast<float>(s + (beta != 0.0f ? beta * y0[size_t(i) * n + j] : 0.0));
        }
    auto dx = to_device(x.bytes);
    auto dw = to_device(w.bytes);
    // beta = 0 must not read y: start it poisoned. beta = 1 accumulates onto y0.
    cuda::DeviceBuffer dy = beta != 0.0f ? to_device(y0) : poisoned(y0.size() * 4);
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    {
        cuda::Linear linear(stream);
        linear(dx.get(), dw.get(), t, dy.as<float>(), m, n, k, beta);
        CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    CUDA_CHECK(cudaStreamDestroy(stream));
    const double tol = t == DType::F32 ? 1e-5 : 1e-4;  // inputs exact in t, fp32 accumulation
    EXPECT_LE(rel_error(from_device<float>(dy, ref.size()), ref), tol)
        << dtype_name(t) << " m " << m << " n " << n << " k " << k << " beta " << beta;
}

TEST(GpuLinear, GemvMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (DType t : {DType::BF16, DType::F16, DType::F32})
        for (int k : {64, 96, 4096, 4104})
            for (float beta : {0.0f, 1.0f}) {
                ASSERT_TRUE(cuda::gemv_supported(k, t));
                check_linear(rng, t, 1, rng.integer(1, 700), k, beta);
            }
}

TEST(GpuLinear, CublasMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (DType t : {DType::BF16, DType::F16, DType::F32})
        for (float beta : {0.0f, 1.0f})
            check_linear(rng, t, rng.integer(2, 70), rng.integer(1, 300), 256, beta);
    check_linear(rng, DType::BF16, 1, 33, 30, 0.0f);  // a row GEMV cannot take (60 bytes): cuBLAS
}

// Fused and separate must agree bit for bit: the fused forms promise the same arithmetic in the same order.
TEST(GpuLinear, FusedNormAndSwigluAreBitIdenticalToSeparateKernels) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (DType t : {DType::BF16, DType::F16, DType::F32})
        for (int k : {96, 3584, 4096})
            for (int variant = 0; variant < cuda::gemv_variants; ++variant) {
                // k 96: more rows than one wave of blocks holds, so persistent warps take several.
                const int inter = k == 96 ? rng.integer(4000, 5000) : rng.integer(1, 300), n = 2 * inter;
                const size_t es = dtype_size(t);
                const auto resid = rng.normals(static_cast<size_t>(k), 3.0f);
                std::vector<float> gamma(static_cast<size_t>(k));
                for (float& g : gamma) g = rng.uniform(0.5f, 1.5f);
                const Typed w = make_typed(rng.normals(static_cast<size_t>(n) * k, 0.05f), t);
                const auto y0 = rng.normals(static_cast<size_t>(n));
                auto d_resid = to_device(resid);
                auto d_gamma = to_device(gamma);
                auto d_w = to_device(w.bytes);
                auto d_xn = poisoned(static_cast<size_t>(k) * es);
                auto d_y = to_device(y0), d_y_fused = to_device(y0);
                auto d_act = poisoned(static_cast<size_t>(inter) * es);
                auto d_act_fused = poisoned(static_cast<size_t>(inter) * es);
                const float eps = 1e-5f;

                // Separate: rmsnorm, gemv accumulating into y0 (beta 1), then gemv + swiglu.
                cuda::rmsnorm(d_resid.as<float>(), d_gamma.as<float>(), d_xn.get(), t, 1, k, eps, nullptr);
                cuda::GemvArgs a;
                a.w = d_w.get();
                a.x = d_xn.get();
                a.y = d_y.as<float>();
                a.beta = 1.0f;
                a.n = n;
                a.k = k;
                a.dtype = t;
                cuda::gemv(a, nullptr, variant);
                auto d_gate_up = poisoned(static_cast<size_t>(n) * 4);
                a.y = d_gate_up.as<float>();
                a.beta = 0.0f;
                cuda::gemv(a, nullptr, variant);
                cuda::swiglu(d_gate_up.as<float>(), d_act.get(), t, 1, inter, nullptr);

                // Fused: the norm in, and SwiGLU out.
                cuda::GemvArgs f = a;
                f.x = nullptr;
                f.norm_in = d_resid.as<float>();
                f.norm_weight = d_gamma.as<float>();
                f.norm_eps = eps;
                f.y = d_y_fused.as<float>();
                f.beta = 1.0f;
                ASSERT_TRUE(cuda::gemv_supported(k, t, true));
                cuda::gemv(f, nullptr, variant);
                f.y = nullptr;
                f.beta = 0.0f;
                f.swiglu_out = d_act_fused.get();
                cuda::gemv(f, nullptr, variant);
                CUDA_CHECK(cudaDeviceSynchronize());

                const std::string what = std::string(dtype_name(t)) + " k " + std::to_string(k) + " n " +
                                         std::to_string(n) + " variant " + std::to_string(variant);
                // The separate path itself against the CPU (every row written, whatever the variant).
                const auto xn = from_device_as_f32(d_xn, t, static_cast<size_t>(k));
                std::vector<float> ref(static_cast<size_t>(n));
                for (int j = 0; j < n; ++j) {
                    double acc = y0[static_cast<size_t>(j)];
                    for (int c = 0; c < k; ++c) acc += double(xn[size_t(c)]) * w.values[size_t(j) * k + c];
                    ref[static_cast<size_t>(j)] = static_cast<float>(acc);
                }
                EXPECT_LE(rel_error(from_device<float>(d_y, ref.size()), ref), t == DType::F32 ? 1e-5 : 1e-4)
                    << "separate, " << what;
                EXPECT_EQ(from_device<uint32_t>(d_y_fused, y0.size()), from_device<uint32_t>(d_y, y0.size()))
                    << "norm fused, " << what;
                EXPECT_EQ(from_device<uint8_t>(d_act_fused, inter * es),
                          from_device<uint8_t>(d_act, inter * es))
                    << "norm and SwiGLU fused, " << what;
                EXPECT_TRUE(all_finite(from_device_as_f32(d_act_fused, t, inter))) << what;
            }
}

// The q/k/v GEMV with attention_input in its epilogue (and the norm in its prologue, as the decode step runs
// it) against rmsnorm + gemv + attention_input: q, the K/V slot and the page metadata bit for bit, from the
// same random cache and metadata, at a slot that starts a page and at one inside a page.
TEST(GpuLinear, FusedAttentionInputIsBitIdenticalToSeparateKernels) {
    DSA_REQUIRE_GPU();
    struct Heads {
        int n_heads, n_kv_heads, head_dim;
    };
    Rng rng;
    for (DType t : {DType::BF16, DType::F16})
        for (Heads hd : {Heads{8, 2, 64}, Heads{4, 4, 128}, Heads{32, 8, 128}})
            for (int P : {16, 64})
                for (int variant = 0; variant < cuda::gemv_variants; ++variant) {
                    const int k = 256, D = hd.head_dim, n = (hd.n_heads + 2 * hd.n_kv_heads) * D;
                    const bool bias = variant % 2 == 1;
                    const int pos = (variant / 2) % 2 == 0 ? 2 * P : 2 * P + rng.integer(1, P - 1);
                    const int num_pages = 5;
                    std::vector<int32_t> table(static_cast<size_t>(num_pages));
                    std::iota(table.begin(), table.end(), 0);
                    std::shuffle(table.begin(), table.end(), rng.gen());
                    std::vector<float> gamma(static_cast<size_t>(k)), inv_freq(static_cast<size_t>(D / 2));
                    for (float& g : gamma) g = rng.uniform(0.5f, 1.5f);
                    for (int i = 0; i < D / 2; ++i) inv_freq[size_t(i)] = std::pow(500000.0f, -2.0f * i / D);
                    const Typed w = make_typed(rng.normals(static_cast<size_t>(n) * k, 0.05f), t);
                    const size_t pool = static_cast<size_t>(num_pages) * hd.n_kv_heads * P * D;
                    const size_t meta = static_cast<size_t>(num_pages) * hd.n_kv_heads * D;
                    const Typed k0 = make_typed(rng.normals(pool), DType::BF16);
                    const Typed v0 = make_typed(rng.normals(pool), DType::BF16);
                    const Typed mm0 = make_typed(rng.normals(2 * meta), DType::BF16);
                    const auto sum0 = rng.normals(meta);
                    std::vector<int32_t> count0(static_cast<size_t>(num_pages) * hd.n_kv_heads);
                    for (int32_t& c : count0) c = rng.integer(1, P);
                    auto d_resid = to_device(rng.normals(static_cast<size_t>(k), 3.0f));
                    auto d_gamma = to_device(gamma), d_w = to_device(w.bytes), d_freq = to_device(inv_freq);
                    auto d_bias = to_device(rng.normals(static_cast<size_t>(n), 0.3f));
                    auto d_table = to_device(table);
                    auto d_start = to_device(std::vector<int32_t>{pos});

                    struct Out {  // q, the cache and the metadata one path writes
                        cuda::DeviceBuffer q, k, v, minmax, sum, count;
                    };
                    auto fresh = [&] {
                        return Out{poisoned(static_cast<size_t>(hd.n_heads) * D * 2),
                                   to_device(k0.bytes),
                                   to_device(v0.bytes),
                                   to_device(mm0.bytes),
                                   to_device(sum0),
                                   to_device(count0)};
                    };
                    Out sep = fresh(), fused = fresh();
                    auto params = [&](Out& o) {
                        cuda::AttentionInputParams p;
                        p.bias = bias ? d_bias.as<float>() : nullptr;
                        p.inv_freq = d_freq.as<float>();
                        p.rope_scaling = bias ? 1.1f : 1.0f;
                        p.start_pos = d_start.as<int32_t>();
                        p.block_tables = d_table.as<int32_t>();
                        p.table_stride = num_pages;
                        p.q_out = o.q.as<uint16_t>();
                        p.k_pool = o.k.as<uint16_t>();
                        p.v_pool = o.v.as<uint16_t>();
                        p.kminmax = o.minmax.as<uint16_t>();
                        p.ksum = o.sum.as<float>();
                        p.count = o.count.as<int32_t>();
                        p.n_tokens = 1;
                        p.n_heads = hd.n_heads;
                        p.n_kv_heads = hd.n_kv_heads;
                        p.head_dim = D;
                        p.page_size = P;
                        return p;
                    };
                    const float eps = 1e-5f;
                    cuda::GemvArgs a;
                    a.w = d_w.get();
                    a.n = n;
                    a.k = k;
                    a.dtype = t;

                    auto d_xn = poisoned(static_cast<size_t>(k) * dtype_size(t));
                    auto d_qkv = poisoned(static_cast<size_t>(n) * 4);
                    cuda::rmsnorm(d_resid.as<float>(), d_gamma.as<float>(), d_xn.get(), t, 1, k, eps,
                                  nullptr);
                    a.x = d_xn.get();
                    a.y = d_qkv.as<float>();
                    cuda::gemv(a, nullptr, variant);
                    cuda::AttentionInputParams p = params(sep);
                    p.qkv = d_qkv.as<float>();
                    cuda::attention_input(p, nullptr);

                    cuda::GemvArgs f = a;
                    f.x = nullptr;
                    f.y = nullptr;
                    f.norm_in = d_resid.as<float>();
                    f.norm_weight = d_gamma.as<float>();
                    f.norm_eps = eps;
                    f.to_attention_input = true;
                    f.attention = params(fused);
                    cuda::gemv(f, nullptr, variant);
                    CUDA_CHECK(cudaDeviceSynchronize());

                    const std::string what = std::string(dtype_name(t)) + " heads " +
                                             std::to_string(hd.n_heads) + "/" +
                                             std::to_string(hd.n_kv_heads) + " D " + std::to_string(D) +
                                             " P " + std::to_string(P) + " pos " + std::to_string(pos) +
                                             " variant " + std::to_string(variant);
                    auto same = [&](const cuda::DeviceBuffer& x, const cuda::DeviceBuffer& y, size_t words,
                                    const char* name) {
                        EXPECT_EQ(from_device<uint16_t>(x, words), from_device<uint16_t>(y, words))
                            << name << ", " << what;
                    };
                    same(fused.q, sep.q, static_cast<size_t>(hd.n_heads) * D, "q");
                    same(fused.k, sep.k, pool, "k");
                    same(fused.v, sep.v, pool, "v");
                    same(fused.minmax, sep.minmax, 2 * meta, "kmin/kmax");
                    same(fused.sum, sep.sum, 2 * meta, "ksum");
                    same(fused.count, sep.count, 2 * count0.size(), "count");
                    EXPECT_TRUE(all_finite(
                        from_device_as_f32(fused.q, DType::BF16, static_cast<size_t>(hd.n_heads) * D)))
                        << what;
                }
}

// The LM head's form: norm in, y out and its argmax, against rmsnorm + gemv + argmax_rows (itself checked
// against the CPU in test_elementwise_kernels.cpp), in every variant; then again with the maximum tied at
// three rows (copies of the winning row: identical sums), where the first must win. Calls reuse the same
// scratch, so the ticket's reset is exercised too.
TEST(GpuLinear, FusedArgmaxMatchesArgmaxKernelWithTies) {
    DSA_REQUIRE_GPU();
    Rng rng;
    const size_t scratch_bytes = cuda::gemv_argmax_scratch_bytes();
    auto d_scratch = to_device(std::vector<uint8_t>(scratch_bytes, 0));
    for (DType t : {DType::BF16, DType::F16, DType::F32})
        for (int n : {37, 5000, 60000})
            for (int variant = 0; variant < cuda::gemv_variants; ++variant) {
                const int k = 256;
                const size_t es = dtype_size(t);
                std::vector<float> gamma(static_cast<size_t>(k));
                for (float& g : gamma) g = rng.uniform(0.5f, 1.5f);
                auto wv = rng.normals(static_cast<size_t>(n) * k, 0.05f);
                auto d_resid = to_device(rng.normals(static_cast<size_t>(k), 3.0f));
                auto d_gamma = to_device(gamma);
                auto d_xn = poisoned(static_cast<size_t>(k) * es);
                const float eps = 1e-5f;
                cuda::rmsnorm(d_resid.as<float>(), d_gamma.as<float>(), d_xn.get(), t, 1, k, eps, nullptr);
                for (int round = 0; round < 2; ++round) {
                    auto d_w = to_device(make_typed(wv, t).bytes);
                    auto d_y = poisoned(static_cast<size_t>(n) * 4),
                         d_y_fused = poisoned(static_cast<size_t>(n) * 4);
                    auto d_idx = poisoned(4), d_idx_fused = poisoned(4);
                    cuda::GemvArgs a;
                    a.w = d_w.get();
                    a.x = d_xn.get();
                    a.y = d_y.as<float>();
                    a.n = n;
                    a.k = k;
                    a.dtype = t;
                    cuda::gemv(a, nullptr, variant);
                    cuda::argmax_rows(d_y.as<float>(), d_idx.as<int32_t>(), 1, n, nullptr);
                    cuda::GemvArgs f = a;
                    f.x = nullptr;
                    f.norm_in = d_resid.as<float>();
                    f.norm_weight = d_gamma.as<float>();
                    f.norm_eps = eps;
                    f.y = d_y_fused.as<float>();
                    f.argmax_out = d_idx_fused.as<int32_t>();
                    f.argmax_scratch = d_scratch.get();
                    cuda::gemv(f, nullptr, variant);
                    CUDA_CHECK(cudaDeviceSynchronize());
                    const std::string what = std::string(dtype_name(t)) + " n " + std::to_string(n) +
                                             " variant " + std::to_string(variant) + " round " +
                                             std::to_string(round);
                    const auto y = from_device<float>(d_y, static_cast<size_t>(n));
                    EXPECT_EQ(from_device<uint32_t>(d_y_fused, y.size()),
                              from_device<uint32_t>(d_y, y.size()))
                        << what;
                    const int ref = from_device<int32_t>(d_idx, 1)[0];
                    EXPECT_EQ(from_device<int32_t>(d_idx_fused, 1)[0], ref) << what;
                    if (round == 1 || n < 3) break;
                    // Tie the maximum: the winning row copied to one row before it and one after it.
                    const int best = ref, before = rng.integer(0, std::max(0, best - 1)),
                              after = rng.integer(std::min(best + 1, n - 1), n - 1);
                    for (int r : {before, after})
                        std::copy(wv.begin() + size_t(best) * k, wv.begin() + size_t(best + 1) * k,
                                  wv.begin() + size_t(r) * k);
                }
            }
}

}  // namespace
}  // namespace dsa::test
