// RoPE inverse frequencies, following transformers' modeling_rope_utils.py (_compute_default/linear/
// llama3/yarn_parameters) operation for operation. HF evaluates these on fp32 tensors, with the Python
// scalars (factors, 2*pi, the yarn ramp bounds) rounded to fp32 where they meet a tensor; doing the same
// here reproduces HF's tables to the last ulp or two (only torch's fp32 pow may round differently), where
// a double-precision evaluation would differ by up to ~2e-6 relative inside yarn's ramp.
#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dsa {

namespace {

// base ** (arange(0, dim, 2).float() / dim), then 1 / that: [dim / 2]
std::vector<float> pos_freqs(double base, int dim) {
    std::vector<float> f(dim / 2);
    const float b = static_cast<float>(base);
    for (int i = 0; i < dim / 2; ++i) {
        const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
        f[i] = static_cast<float>(std::pow(static_cast<double>(b), static_cast<double>(e)));
    }
    return f;
}

std::vector<float> base_inv_freq(double base, int dim) {
    std::vector<float> f = pos_freqs(base, dim);
    for (float& x : f) x = 1.0f / x;
    return f;
}

int original_context(const ModelConfig& c) {
    const int orig = c.rope_scaling.original_max_position_embeddings;
    return orig > 0 ? orig : c.max_position_embeddings;
}

// Llama 3.1: keep high frequencies (wavelength < orig/high_freq_factor), divide low ones (wavelength >
// orig/low_freq_factor) by `factor`, blend in between.
void apply_llama3(const ModelConfig& c, std::vector<float>& f) {
    const RopeScaling& s = c.rope_scaling;
    const double old_ctx = original_context(c);
    const float low_freq_wavelen = static_cast<float>(old_ctx / s.low_freq_factor);
    const float high_freq_wavelen = static_cast<float>(old_ctx / s.high_freq_factor);
    const float factor = static_cast<float>(s.factor);
    const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
    for (float& x : f) {
        const float wavelen = two_pi / x;
        if (wavelen > low_freq_wavelen) {
            x = x / factor;
        } else if (!(wavelen < high_freq_wavelen)) {
            const float smooth =
                (static_cast<float>(old_ctx) / wavelen - static_cast<float>(s.low_freq_factor)) /
                static_cast<float>(s.high_freq_factor - s.low_freq_factor);
            x = (1.0f - smooth) * x / factor + smooth * x;
        }
    }
}

double yarn_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// YaRN: interpolate (divide by factor) the low frequencies, extrapolate (keep) the high ones, with a linear
// ramp between the dimensions that rotate beta_fast and beta_slow times over the original context.
// Returns the attention scaling (mscale) HF multiplies into cos/sin.
double apply_yarn(const ModelConfig& c, int dim, std::vector<float>& f) {
    const RopeScaling& s = c.rope_scaling;
    const double base = c.rope_theta;
    const double factor = s.factor;
    double attention_factor = s.attention_factor;
    if (attention_factor <= 0.0) {
        attention_factor = (s.mscale != 0.0 && s.mscale_all_dim != 0.0)
                               ? yarn_mscale(factor, s.mscale) / yarn_mscale(factor, s.mscale_all_dim)
                               : yarn_mscale(factor, 1.0);
    }
    const double beta_fast = s.beta_fast != 0.0 ? s.beta_fast : 32.0;
    const double beta_slow = s.beta_slow != 0.0 ? s.beta_slow : 1.0;
    const double orig = original_context(c);
    auto correction_dim = [&](double rotations) {
        return (dim * std::log(orig / (rotations * 2.0 * std::numbers::pi))) / (2.0 * std::log(base));
    };
    double low = correction_dim(beta_fast);
    double high = correction_dim(beta_slow);
    if (s.truncate) {  // HF's default: whole dimensions
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;  // HF's guard against a zero-width ramp

    const std::vector<float> pf = pos_freqs(base, dim);
    const float ff = static_cast<float>(factor);
    const float lo = static_cast<float>(low);
    const float width = static_cast<float>(high - low);
    for (int i = 0; i < dim / 2; ++i) {
        const float ramp = std::clamp((static_cast<float>(i) - lo) / width, 0.0f, 1.0f);
        const float extrapolation = 1.0f - ramp;
        const float inv_extra = 1.0f / pf[i];
        const float inv_inter = 1.0f / (ff * pf[i]);
        f[i] = inv_inter * (1.0f - extrapolation) + inv_extra * extrapolation;
    }
    return attention_factor;
}

}  // namespace

RopeTable make_rope_table(const ModelConfig& config) {
    const int dim = config.head_dim;
    RopeTable t;
    t.inv_freq = base_inv_freq(config.rope_theta, dim);
    double attention_scaling = 1.0;
    switch (config.rope_scaling.type) {
        case RopeType::Default:
            break;
        case RopeType::Linear: {
            const float factor = static_cast<float>(config.rope_scaling.factor);
            for (float& x : t.inv_freq) x /= factor;
            break;
        }
        case RopeType::Llama3:
            apply_llama3(config, t.inv_freq);
            break;
        case RopeType::Yarn:
            attention_scaling = apply_yarn(config, dim, t.inv_freq);
            break;
    }
    t.attention_scaling = static_cast<float>(attention_scaling);
    return t;
}

}  // namespace dsa
