#pragma once
// Helpers for the GPU tests: skip without a device, fresh random data (seed printed on failure, fixed by
// DSA_TEST_SEED), device round trips, NaN poisoning, relative errors, the golden test models.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "engine/backend.h"
#include "util/dtype.h"

namespace dsa::test {

#define DSA_REQUIRE_GPU()                                                      \
    do {                                                                       \
        if (::dsa::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
    } while (0)

// A generator seeded freshly per test (std::random_device) unless DSA_TEST_SEED is set; the seed is attached
// to every failure message of the test that owns it.
class Rng {
public:
    Rng() {
        const char* env = std::getenv("DSA_TEST_SEED");
        seed_ = env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
        gen_.seed(seed_);
        trace_ = std::make_unique<testing::ScopedTrace>(__FILE__, __LINE__,
                                                        "DSA_TEST_SEED=" + std::to_string(seed_));
    }
    float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen_); }
    float normal(float std = 1.0f) { return std::normal_distribution<float>(0.0f, std)(gen_); }
    int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen_); }  // [lo, hi]
    std::mt19937& gen() { return gen_; }
    std::vector<float> normals(size_t n, float std = 1.0f) {
        std::vector<float> v(n);
        for (float& x : v) x = normal(std);
        return v;
    }

private:
    uint32_t seed_;
    std::mt19937 gen_;
    std::unique_ptr<testing::ScopedTrace> trace_;
};

// Values rounded to `t` and stored as raw bytes of `t`, plus their fp32 values (what the device computes on).
struct Typed {
    std::vector<std::byte> bytes;
    std::vector<float> values;
};

inline Typed make_typed(const std::vector<float>& v, DType t) {
    Typed r;
    r.bytes.resize(v.size() * dtype_size(t));
    r.values.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        if (t == DType::F32) {
            std::memcpy(r.bytes.data() + 4 * i, &v[i], 4);
        } else {
            const uint16_t h = t == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
            std::memcpy(r.bytes.data() + 2 * i, &h, 2);
        }
        r.values[i] = load_as_f32(r.bytes.data(), t, i);
    }
    return r;
}

inline float round_to(float v, DType t) {
    return make_typed({v}, t).values[0];
}

template <typename T>
cuda::DeviceBuffer to_device(const std::vector<T>& v) {
    cuda::DeviceBuffer b(v.size() * sizeof(T), "test buffer");
    CUDA_CHECK(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return b;
}

// A buffer filled with 0xFF bytes: NaN as fp32, fp16 and bf16, -1 as int32. Outputs start poisoned so that
// an element the kernel forgets to write fails the comparison.
inline cuda::DeviceBuffer poisoned(size_t bytes) {
    cuda::DeviceBuffer b(bytes, "test buffer");
    CUDA_CHECK(cudaMemset(b.get(), 0xFF, bytes));
    return b;
}

template <typename T>
std::vector<T> from_device(const cuda::DeviceBuffer& b, size_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> v(n);
    CUDA_CHECK(cudaMemcpy(v.data(), b.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
}

// Device values of dtype t as fp32.
inline std::vector<float> from_device_as_f32(const cuda::DeviceBuffer& b, DType t, size_t n) {
    const auto raw = from_device<std::byte>(b, n * dtype_size(t));
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = load_as_f32(raw.data(), t, i);
    return v;
}

// ||a - ref|| / ||ref||; NaN anywhere gives NaN (which fails every EXPECT_LE).
inline double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = static_cast<double>(a[i]) - ref[i];
        num += d * d;
        den += static_cast<double>(ref[i]) * ref[i];
    }
    return std::sqrt(num / den);
}

inline bool all_finite(const std::vector<float>& v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

// The golden test models under tests/data/models (those with a golden.json), sorted by name.
inline std::vector<std::string> golden_models() {
    namespace fs = std::filesystem;
    std::vector<std::string> names;
    const fs::path root = fs::path(DSA_TEST_DATA) / "models";
    if (!fs::exists(root)) return names;
    for (const auto& e : fs::directory_iterator(root))
        if (fs::exists(e.path() / "golden.json")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// Tolerance of a comparison whose output is rounded to `t` once.
inline double tol_for(DType t) {
    return t == DType::F32 ? 1e-5 : (t == DType::F16 ? 2e-3 : 1e-2);
}

}  // namespace dsa::test
