#pragma once
// Perplexity over a long text, computed like llama.cpp's llama-perplexity: the text's tokens are cut into
// consecutive windows of `ctx` tokens, each starting with BOS (window k = BOS + text tokens
// [k(ctx-1), (k+1)(ctx-1)) when the tokenizer has a BOS, text tokens [k ctx, (k+1) ctx) otherwise), every
// window runs on a fresh sequence, and only the second half is scored: the logits at positions
// j = ctx/2 .. ctx-2 predict token j+1, so every scored token sees at least ctx/2 tokens of context.
// PPL = exp(mean NLL); its error is llama.cpp's: exp(mean) * sqrt(var(NLL) / (count - 1)) (delta method on
// the standard error of the mean NLL).
//
// The first half runs as a chunked prefill. The scored half runs in chunks with LogitsMode::All under full
// attention, and one token per forward (decode steps) under a sparse policy, because sparse attention is
// a decode-time mechanism: each scored token then attends exactly what it would attend in generation.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace dsa {

// Windows that fit in `n_text_tokens`.
int count_ppl_windows(size_t n_text_tokens, int ctx, int bos);
// Window k: [ctx] ids.
std::vector<int> ppl_window(std::span<const int> text_tokens, int ctx, int bos, int k);
// Tokens scored per window: ctx - 1 - ctx/2.
int ppl_scored_per_window(int ctx);

// -log softmax(logits)[target] in double precision. logits: [vocab].
double token_nll(std::span<const float> logits, int target);

// Running mean and variance of per-token NLLs, as llama-perplexity sums them.
class NllAccumulator {
public:
    void add(double nll);
    void merge(const NllAccumulator& o);
    int64_t count() const { return count_; }
    double mean() const;       // mean NLL (0 when empty)
    double ppl() const;        // exp(mean)
    double ppl_error() const;  // exp(mean) * sqrt((E[nll^2] - mean^2) / (count - 1)); 0 below 2 tokens

private:
    double sum_ = 0, sum_sq_ = 0;
    int64_t count_ = 0;
};

struct PplSettings {
    int ctx = 512;               // window length in tokens (>= 4)
    int max_windows = -1;        // --chunks: -1 all
    int batch = 512;             // chunk size of prefill and of the scored half under full attention
    bool decode_scored = false;  // scored half one token per forward (sparse policies)
    int bos = -1;                // BOS id, -1: none
    bool progress = true;        // one line per window on stderr
    std::string label;           // names the run in progress lines
};

struct PplResult {
    NllAccumulator nll;
    int windows = 0;
    double attended_mean = 0;  // tokens attended per (layer, kv head) per scored query token
    double seconds = 0;
};

// Scores one window (ctx ids) on a fresh sequence of `backend`; adds its NLLs to `acc` and returns the
// attended-token sum over its scored tokens.
double score_ppl_window(Backend& backend, std::span<const int> window, const PplSettings& settings,
                        NllAccumulator& acc);

// Throws dsa::Error naming -f/-c when the text holds less than one window.
PplResult run_perplexity(Backend& backend, std::span<const int> text_tokens, const PplSettings& settings);

}  // namespace dsa
