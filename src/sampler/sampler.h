#pragma once
// Token sampling in llama.cpp's order: repetition penalty -> top-k -> top-p -> min-p -> temperature ->
// draw. temperature <= 0 is greedy (argmax, ties to the lower id). Same seed and inputs => same tokens.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace dsa {

struct SamplerParams {
    float temperature = 0.8f;
    int top_k = 40;               // <= 0: disabled
    float top_p = 0.95f;          // >= 1: disabled
    float min_p = 0.05f;          // <= 0: disabled
    float repeat_penalty = 1.0f;  // 1: disabled (CTRL-style: positive logits /= p, negative *= p)
    int repeat_last_n = 64;       // tokens of history the penalty looks at
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& params);
    // logits: [vocab]; history: tokens so far (prompt + generated), for the repetition penalty.
    int sample(std::span<const float> logits, std::span<const int> history);

    const SamplerParams& params() const { return params_; }

private:
    SamplerParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int>> cand_;  // scratch, reused across calls: (logit, id)
    std::vector<double> weight_;               // scratch: unnormalised probabilities of cand_
};

}  // namespace dsa
