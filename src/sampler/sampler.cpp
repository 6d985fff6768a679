// llama.cpp's default sampler chain. Probabilities for top-p and min-p are taken at temperature 1 (as in
// llama.cpp, where temperature comes after them), so the temperature only reshapes the surviving tokens.
#include "sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "util/error.h"

namespace dsa {

namespace {

// Higher logit first; equal logits: lower id first, so every cut is deterministic.
bool higher(const std::pair<float, int>& a, const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Uniform double in [0, 1) from the top 53 bits of one engine output (std::uniform_real_distribution is
// implementation defined, which would make seeded runs differ between standard libraries).
double uniform01(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

int Sampler::sample(std::span<const float> logits, std::span<const int> history) {
    const int n_vocab = static_cast<int>(logits.size());
    if (n_vocab == 0) throw Error("sampler: empty logits");
    cand_.resize(n_vocab);
    // A NaN would break the sort's ordering; it can never be a sensible choice, so it ranks last.
    for (int i = 0; i < n_vocab; ++i) cand_[i] = {std::isnan(logits[i]) ? -INFINITY : logits[i], i};

    // Repetition penalty (CTRL): each distinct token of the last repeat_last_n once; < 0 means all history.
    if (params_.repeat_penalty != 1.0f && params_.repeat_last_n != 0) {
        const size_t n = params_.repeat_last_n < 0 ? history.size()
                                                   : std::min(history.size(), size_t(params_.repeat_last_n));
        std::unordered_set<int> seen;
        for (int id : history.subspan(history.size() - n)) {
            if (id < 0 || id >= n_vocab) {
                throw Error("sampler: history token {} is outside the vocabulary [0, {})", id, n_vocab);
            }
            if (!seen.insert(id).second) continue;
            float& l = cand_[id].first;
            l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
        }
    }

    if (params_.temperature <= 0) {
        // max_element keeps the first of equal maxima: the lower id.
        auto best = std::max_element(cand_.begin(), cand_.end(),
                                     [](const auto& a, const auto& b) { return a.first < b.first; });
        return best->second;
    }

    // Top-k: the k best in order. Without it, sort everything (top-p needs the order).
    size_t n = cand_.size();
    if (params_.top_k > 0 && size_t(params_.top_k) < n) {
        n = size_t(params_.top_k);
        std::partial_sort(cand_.begin(), cand_.begin() + n, cand_.end(), higher);
        cand_.resize(n);
    } else {
        std::sort(cand_.begin(), cand_.end(), higher);
    }

    // Top-p: the shortest prefix whose softmax mass reaches top_p; the first token always stays.
    const double max_logit = cand_.front().first;
    if (params_.top_p < 1.0f) {
        double total = 0;
        for (const auto& c : cand_) total += std::exp(double(c.first) - max_logit);
        double mass = 0;
        size_t keep = 0;
        while (keep < cand_.size()) {
            mass += std::exp(double(cand_[keep].first) - max_logit) / total;
            ++keep;
            if (mass >= params_.top_p) break;
        }
        cand_.resize(keep);
    }

    // Min-p: p_i >= min_p * p_max  <=>  logit_i >= max_logit + ln(min_p). The first token always stays.
    if (params_.min_p > 0) {
        const double cut = max_logit + std::log(double(params_.min_p));
        size_t keep = 1;
        while (keep < cand_.size() && double(cand_[keep].first) >= cut) ++keep;
        cand_.resize(keep);
    }

    // Temperature, softmax, draw: the first token whose cumulative weight passes u * total.
    const double inv_t = 1.0 / params_.temperature;
    weight_.resize(cand_.size());
    double total = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
        weight_[i] = std::exp((double(cand_[i].first) - max_logit) * inv_t);
        total += weight_[i];
    }
    const double target = uniform01(rng_) * total;
    double acc = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
        acc += weight_[i];
        if (target < acc) return cand_[i].second;
    }
    return cand_.back().second;
}

}  // namespace dsa
