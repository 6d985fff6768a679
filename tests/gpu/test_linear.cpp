// Projections: the GEMV kernel (one row) and cuBLAS (several rows) against a double-precision CPU product,
// with beta 0 (overwrite) and beta 1 (accumulate into the residual); the GEMV's fused RMSNorm and SwiGLU
// against the separate kernels (themselves checked against the CPU in test_elementwise_kernels.cpp).
#include <gtest/gtest.h>

#include "backend/cuda/linear.h"
#include "gpu_test_util.h"
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
                const int inter = rng.integer(1, 300), n = 2 * inter;
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
                EXPECT_EQ(from_device<uint32_t>(d_y_fused, y0.size()), from_device<uint32_t>(d_y, y0.size()))
                    << "norm fused, " << what;
                EXPECT_EQ(from_device<uint8_t>(d_act_fused, inter * es),
                          from_device<uint8_t>(d_act, inter * es))
                    << "norm and SwiGLU fused, " << what;
                EXPECT_TRUE(all_finite(from_device_as_f32(d_act_fused, t, inter))) << what;
            }
}

}  // namespace
}  // namespace dsa::test
