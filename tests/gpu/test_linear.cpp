// Projections: the GEMV kernel (one row) and cuBLAS (several rows) against a double-precision CPU product,
// with beta 0 (overwrite) and beta 1 (accumulate into the residual).
#include <gtest/gtest.h>

#include "backend/cuda/linear.h"
#include "gpu_test_util.h"
#include "kernels/gemv.h"

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

}  // namespace
}  // namespace dsa::test
