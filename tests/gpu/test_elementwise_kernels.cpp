// Embedding, RMSNorm, SwiGLU and argmax kernels against plain CPU references on fresh random data.
#include <gtest/gtest.h>

#include <algorithm>

#include "gpu_test_util.h"
#include "kernels/argmax.h"
#include "kernels/embed.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

namespace dsa::test {
namespace {

constexpr DType kDtypes[] = {DType::BF16, DType::F16, DType::F32};

TEST(GpuKernels, EmbeddingCopiesRowsAsF32) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (DType t : kDtypes) {
        const int vocab = 997, hidden = 200, n = 37;
        const Typed table = make_typed(rng.normals(static_cast<size_t>(vocab) * hidden), t);
        std::vector<int32_t> tokens(n);
        for (int& x : tokens) x = rng.integer(0, vocab - 1);
        auto d_table = to_device(table.bytes);
        auto d_tokens = to_device(tokens);
        auto d_out = poisoned(static_cast<size_t>(n) * hidden * 4);
        cuda::embed_tokens(d_tokens.as<int32_t>(), d_table.get(), t, d_out.as<float>(), n, hidden, nullptr);
        const auto out = from_device<float>(d_out, static_cast<size_t>(n) * hidden);
        for (int i = 0; i < n; ++i)
            for (int c = 0; c < hidden; ++c)
                ASSERT_EQ(out[static_cast<size_t>(i) * hidden + c],
                          table.values[static_cast<size_t>(tokens[i]) * hidden + c]);
    }
}

TEST(GpuKernels, RmsNormMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (DType t : kDtypes) {
        for (int cols : {64, 96, 4096, 3584}) {
            const int rows = rng.integer(1, 9);
            const float eps = 1e-5f;
            const auto x = rng.normals(static_cast<size_t>(rows) * cols, 3.0f);
            std::vector<float> w(cols);
            for (float& v : w) v = rng.uniform(0.5f, 1.5f);
            std::vector<float> ref(x.size());
            for (int r = 0; r < rows; ++r) {
                double ss = 0;
                for (int c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
                const float inv = 1.0f / std::sqrt(static_cast<float>(ss / cols) + eps);
                for (int c = 0; c < cols; ++c) ref[r * cols + c] = x[r * cols + c] * inv * w[c];
            }
            auto dx = to_device(x);
            auto dw = to_device(w);
            auto dout = poisoned(x.size() * dtype_size(t));
            cuda::rmsnorm(dx.as<float>(), dw.as<float>(), dout.get(), t, rows, cols, eps, nullptr);
            const auto out = from_device_as_f32(dout, t, x.size());
            EXPECT_LE(rel_error(out, ref), tol_for(t)) << dtype_name(t) << " cols " << cols;
        }
    }
}

// Widths with (1408) and without (1027) the kernel's 4-column vectors.
TEST(GpuKernels, SwigluMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (DType t : kDtypes)
        for (int inter : {1408, 1027}) {
            const int n = rng.integer(1, 7);
            const auto gu = rng.normals(static_cast<size_t>(n) * 2 * inter, 2.0f);
            std::vector<float> ref(static_cast<size_t>(n) * inter);
            for (int i = 0; i < n; ++i)
                for (int c = 0; c < inter; ++c) {
                    const float g = gu[(size_t(i) * 2) * inter + c], u = gu[(size_t(i) * 2 + 1) * inter + c];
                    ref[size_t(i) * inter + c] = g / (1.0f + std::exp(-g)) * u;
                }
            auto dgu = to_device(gu);
            auto dout = poisoned(ref.size() * dtype_size(t));
            cuda::swiglu(dgu.as<float>(), dout.get(), t, n, inter, nullptr);
            EXPECT_LE(rel_error(from_device_as_f32(dout, t, ref.size()), ref), tol_for(t))
                << dtype_name(t) << " inter " << inter;
        }
}

TEST(GpuKernels, ArgmaxPicksFirstMaximum) {
    DSA_REQUIRE_GPU();
    Rng rng;
    const int rows = 5, cols = 128256;
    auto x = rng.normals(static_cast<size_t>(rows) * cols);
    std::vector<int32_t> ref(rows);
    for (int r = 0; r < rows; ++r) {
        float* row = x.data() + static_cast<size_t>(r) * cols;
        // Plant a tie of the maximum at two random places; the lower index must win.
        const int a = rng.integer(0, cols - 1), b = rng.integer(0, cols - 1);
        row[a] = row[b] = 10.0f + r;
        ref[r] = std::min(a, b);
    }
    auto dx = to_device(x);
    auto dout = poisoned(rows * 4);
    cuda::argmax_rows(dx.as<float>(), dout.as<int32_t>(), rows, cols, nullptr);
    EXPECT_EQ(from_device<int32_t>(dout, rows), ref);
}

}  // namespace
}  // namespace dsa::test
