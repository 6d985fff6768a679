#pragma once
// The model's weights on the device, uploaded once.
//   Matrices stay in the model's storage dtype (BF16, F16 or F32: F32 models are NOT downcast, so the
//   CUDA backend follows an fp32 checkpoint as closely as the CPU reference does; they cost 2x the bytes of
//   bf16). A matrix stored in another dtype than the projections is converted to theirs at upload.
//   q/k/v are concatenated into one [q_dim + 2 kv_dim][hidden] matrix and gate/up into one
//   [2 inter][hidden] matrix: one GEMM (or GEMV launch) each instead of three and two.
//   Norm weights and biases are fp32 (a few KB).
#include <initializer_list>
#include <string>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "model/model.h"

namespace dsa::cuda {

struct DeviceLayer {
    const float* attn_norm = nullptr;  // [hidden]
    const void* wqkv = nullptr;        // [q_dim + 2 kv_dim][hidden]
    const float* bqkv = nullptr;       // [q_dim + 2 kv_dim], null without attention bias
    const float* q_norm = nullptr;     // [head_dim], null without q/k norm
    const float* k_norm = nullptr;     // [head_dim]
    const void* wo = nullptr;          // [hidden][q_dim]
    const float* mlp_norm = nullptr;   // [hidden]
    const void* w_gate_up = nullptr;   // [2 inter][hidden]: gate rows, then up rows
    const void* w_down = nullptr;      // [hidden][inter]
};

class DeviceWeights {
public:
    explicit DeviceWeights(const Model& model);

    DType dtype() const { return dtype_; }
    const std::vector<DeviceLayer>& layers() const { return layers_; }
    const void* embed() const { return embed_; }             // [vocab][hidden]
    const void* lm_head() const { return lm_head_; }         // [vocab][hidden] (the embedding when tied)
    const float* final_norm() const { return final_norm_; }  // [hidden]
    const float* inv_freq() const { return inv_freq_; }      // [head_dim / 2]
    float rope_scaling() const { return rope_scaling_; }
    size_t bytes() const { return bytes_; }

private:
    // Concatenates `parts` (row-major, along the first dimension) into one new device buffer of `type`.
    const void* upload(std::initializer_list<const TensorView*> parts, DType type, const std::string& what);
    const float* upload_f32(std::initializer_list<const TensorView*> parts, const std::string& what) {
        return static_cast<const float*>(upload(parts, DType::F32, what));
    }

    DType dtype_;
    std::vector<DeviceBuffer> buffers_;
    std::vector<DeviceLayer> layers_;
    const void* embed_ = nullptr;
    const void* lm_head_ = nullptr;
    const float* final_norm_ = nullptr;
    const float* inv_freq_ = nullptr;
    float rope_scaling_ = 1.0f;
    size_t bytes_ = 0;
};

}  // namespace dsa::cuda
