#pragma once
// The generation loop shared by every command that produces text (generate, compare, bench, eval):
// chunked prefill of the prompt, then one-token decode steps (sample -> callback -> forward) until an
// EOS id, n_predict tokens, or a full context. Collects llama.cpp-style timings.
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "sampler/sampler.h"

namespace dsa {

struct GenerateParams {
    int n_predict = 128;        // tokens to generate; -1: until EOS or a full context
    int batch = 0;              // prefill chunk size in tokens (see prefill_batch; the last may be shorter)
    std::vector<int> eos_ids;   // generation stops (without emitting it) at any of these
    bool show_progress = true;  // "prefill D/N tokens" per chunk on stderr when the prompt is > 2 chunks
};

enum class StopReason { Eos, NPredict, ContextFull };

struct GenerateTimings {
    double load_ms = 0;    // filled by the caller (model + tokenizer + backend creation)
    double prompt_ms = 0;  // chunked prefill, all chunks
    int prompt_tokens = 0;
    int prompt_chunks = 0;
    double eval_ms = 0;  // decode forward() calls
    int eval_runs = 0;
    double sample_ms = 0;  // sampler calls
    int sample_runs = 0;
    double attended_sum = 0;  // sum over decode runs of ForwardStats::attended_tokens
    double wall_ms = 0;       // generate() from entry to return, streaming callbacks included
    double total_ms() const { return load_ms + wall_ms; }
    double attended_mean() const { return eval_runs > 0 ? attended_sum / eval_runs : 0.0; }
};

struct GenerateResult {
    std::vector<int> tokens;  // generated ids in order, the stopping EOS excluded
    StopReason stop = StopReason::NPredict;
    GenerateTimings timings;
};

// Called once per generated token, in order, before the next forward() starts.
using TokenCallback = std::function<void(int id)>;

// The prefill chunk for a -b/--batch-size value: `batch`, or the backend's own (Backend::prefill_chunk)
// for 0. Throws dsa::Error when negative.
int prefill_batch(const Backend& backend, int batch);

// Runs `tokens` through `backend` in chunks of prefill_batch(backend, batch) tokens (LogitsMode::Last on
// every chunk, so `logits` [vocab] ends up holding the last token's logits). No chunk is a single token (a
// 1-token forward() is a decode step, see Backend::forward) unless `tokens` is: a 1-token remainder joins the
// last chunk, and batch 1 runs chunks of 2. Prints progress per chunk when asked and the prompt is longer
// than two chunks. Returns the number of chunks.
int prefill(Backend& backend, Sequence& seq,
            std::span<const int> tokens,  // [T]
            int batch,
            std::span<float> logits,  // [vocab]
            bool show_progress);

// The whole loop on a fresh sequence, released on return (also when it throws). Throws dsa::Error when
// the prompt is empty or does not fit the backend's context.
GenerateResult generate(Backend& backend, Sampler& sampler,
                        std::span<const int> prompt,  // [T]
                        const GenerateParams& params, const TokenCallback& on_token);

// The ids that end generation: the model config's eos_token_ids plus the tokenizer's eos (-1: none),
// deduplicated.
std::vector<int> collect_eos_ids(const std::vector<int>& config_eos, int tokenizer_eos);

// llama.cpp-style timing lines ("dsa: prompt eval time = ..."), one per line, to `out`.
void print_timings(std::FILE* out, const GenerateTimings& t);

}  // namespace dsa
