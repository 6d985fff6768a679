#pragma once
// RoPE frequency table for every scaling variant HF supports for these architectures (default, linear,
// llama3, yarn), computed once the way HF does (fp32, step by step). Both backends apply it the same way
// (HF "rotate_half" layout: pairs (i, i + D/2)):
//   angle(pos, i) = pos * inv_freq[i],
//   q'[i] = q[i] cos - q[i+D/2] sin,  q'[i+D/2] = q[i+D/2] cos + q[i] sin,
// with cos/sin multiplied by attention_scaling (yarn's mscale; 1 otherwise).
#include <vector>

#include "model/config.h"

namespace dsa {

struct RopeTable {
    std::vector<float> inv_freq;  // [head_dim / 2]
    float attention_scaling = 1.0f;
};

RopeTable make_rope_table(const ModelConfig& config);

}  // namespace dsa
