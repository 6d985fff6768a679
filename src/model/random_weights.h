#pragma once
// A model of a real architecture with random weights, for benchmarking real shapes without checkpoint files:
// `--random-weights models/shapes/NAME.json` (the checkpoint's config.json). Weights are bf16, drawn
// uniformly with a fixed seed so two runs build the same model:
//   matrices and biases: std 0.02 (HF's initializer_range): with RMSNorm in front of every projection the
//   activations stay O(1) through any depth and the logits have std ~0.02 * sqrt(hidden) (1.3 at 4096);
//   norm weights: 1.0.
#include <cstdint>
#include <filesystem>

#include "model/model.h"

namespace dsa {

// Throws dsa::Error when the file is missing or is not a supported config.json.
Model make_random_model(const std::filesystem::path& config_json, uint64_t seed = 0);

}  // namespace dsa
