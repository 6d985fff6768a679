#pragma once
// A non-owning view of a stored tensor (mmapped safetensors or an owned buffer), in its stored dtype.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/dtype.h"

namespace dsa {

struct TensorView {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;  // row-major, as in safetensors (Linear weights: [out_features][in_features])
    const void* data = nullptr;
    size_t nbytes = 0;

    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
    int64_t cols() const { return shape.size() < 2 ? (shape.empty() ? 1 : shape[0]) : shape[1]; }
    bool valid() const { return data != nullptr; }
    // Element i as fp32.
    float at(size_t i) const { return load_as_f32(data, dtype, i); }
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace dsa
