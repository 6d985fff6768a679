#pragma once
// Passkey retrieval accuracy of one backend (one attention policy) over contexts x depths x trials.
// Each trial: the prompt up to the question is prefilled in chunks (dense, as in generation); the question
// tokens then run one by one as decode steps, so the step whose logits give the first answer token, and
// every later one, attends through the policy; the answer is decoded greedily.
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "eval/passkey_prompt.h"

namespace dsa {

class Tokenizer;

struct PasskeySettings {
    std::vector<int> contexts;   // prompt lengths in tokens
    std::vector<double> depths;  // fact positions in [0, 1]
    int batch = 512;             // prefill chunk size
    std::vector<int> eos_ids;    // decoding stops at any of them
    bool progress = true;        // one line per trial on stderr
    std::string label;           // names the run in progress lines, e.g. "quest B=1024"
};

struct PasskeyTrialResult {
    int key = 0;
    std::string output;  // decoded greedy continuation
    bool correct = false;
};

struct PasskeyCell {
    int ctx = 0;
    double depth = 0;
    std::vector<PasskeyTrialResult> trials;
    double attended_mean = 0;  // tokens attended per (layer, kv head) per decode step, over every trial
    int correct() const;
    double accuracy() const;  // correct / trials
};

// One trial's continuation: greedy tokens after the prompt, at most n_predict, stopping at EOS.
struct PasskeyAnswer {
    std::vector<int> ids;
    double attended_sum = 0;  // sum of ForwardStats::attended_tokens over the decode steps
    int decode_steps = 0;     // question tokens + generated tokens that were run
};
PasskeyAnswer answer_passkey(Backend& backend, const PasskeyPrompt& prompt, int n_predict,
                             std::span<const int> eos_ids, int batch);

// Tokens generated per trial: the correct answer's length plus 2, so a longer number ("123456") is seen
// as wrong rather than cut to the right length.
int passkey_answer_budget(const Tokenizer& tok, int key);

// Cells in the order contexts x depths (ctx-major).
std::vector<PasskeyCell> run_passkey(Backend& backend, const Tokenizer& tok, std::span<const int> filler,
                                     std::span<const PasskeyTrial> trials, const PasskeySettings& settings);

}  // namespace dsa
