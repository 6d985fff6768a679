#pragma once
// A loaded model: config + tensor storage + bound weights. Movable; the views stay valid because the
// storage behind them is heap-owned by the TensorStore.
#include <filesystem>

#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace dsa {

struct Model {
    std::filesystem::path dir;
    ModelConfig config;
    TensorStore store;
    ModelWeights weights;

    int64_t parameter_count() const;  // elements of every bound tensor (tied embedding counted once)
    size_t weight_bytes() const;      // bytes of every bound tensor in its stored dtype
    DType weight_dtype() const;       // dtype of the projection weights
};

// Loads DIR (config.json, generation_config.json, *.safetensors); validates everything.
Model load_model(const std::filesystem::path& dir);

}  // namespace dsa
