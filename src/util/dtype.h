#pragma once
// Storage dtypes of weights and KV pools, and scalar conversions to and from fp32.
// All arithmetic is fp32; these helpers convert one element at a time so that an 8B model stored in
// bf16 (16 GB) is never upcast whole in memory (it would be 32 GB).
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <string_view>

namespace dsa {

enum class DType : uint8_t { F32, F16, BF16 };

constexpr size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
constexpr std::string_view dtype_name(DType t) {
    return t == DType::F32 ? "F32" : (t == DType::F16 ? "F16" : "BF16");
}

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// Round to nearest even, NaN preserved (same as torch's float -> bfloat16).
inline uint16_t f32_to_bf16(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    return std::bit_cast<float>(bits);
}

// Round to nearest even, overflow to inf.
inline uint16_t f32_to_f16(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (abs < 0x38800000u) {                                                 // below 2^-14: subnormal
        const float a = std::bit_cast<float>(abs);
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
    }
    uint32_t r = abs + 0xc8000fffu + ((abs >> 13) & 1u);  // rebias exponent (-112 << 23) and round
    return static_cast<uint16_t>(sign | (r >> 13));
}

// Element i of a buffer of dtype t, as fp32.
inline float load_as_f32(const void* base, DType t, size_t i) {
    switch (t) {
        case DType::F32: {
            float v;
            std::memcpy(&v, static_cast<const std::byte*>(base) + 4 * i, 4);
            return v;
        }
        case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
        case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    }
    return 0.0f;
}

// Converts n elements starting at element `first` to fp32.
inline void convert_to_f32(const void* base, DType t, size_t first, size_t n, float* out) {
    switch (t) {
        case DType::F32: std::memcpy(out, static_cast<const float*>(base) + first, n * 4); return;
        case DType::F16: {
            const uint16_t* p = static_cast<const uint16_t*>(base) + first;
            for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
            return;
        }
        case DType::BF16: {
            const uint16_t* p = static_cast<const uint16_t*>(base) + first;
            for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(p[i]);
            return;
        }
    }
}

}  // namespace dsa
