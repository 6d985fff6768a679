#pragma once
// Passkey retrieval prompts (the needle-in-a-haystack test of Landmark Attention / LongLoRA) in exactly
// the template tools/train_model.py trains the bundled model on:
//
//   BOS + intro + filler[0, k) + fact + filler[k, F) + question      (k = round(depth * F))
//
// where every part is tokenized on its own (no special tokens) and joined as ids, the filler is a run of
// book tokens, and F is chosen so the prompt is exactly `ctx` tokens. The model should continue with
// " NNNNN.". The checker reads the first run of digits of the greedy continuation.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsa {

class Tokenizer;

// The texts of tools/train_model.py (PASSKEY_INTRO, PASSKEY_FACT, PASSKEY_QUESTION), byte for byte.
inline constexpr std::string_view kPasskeyIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.\n";
inline constexpr std::string_view kPasskeyQuestion = "\nWhat is the pass key? The pass key is";
std::string passkey_fact(int key);    // " The pass key is KEY. Remember it. KEY is the pass key. "
std::string passkey_answer(int key);  // " KEY." (what a correct model continues with)

// Token ids of the fixed parts, encoded once per tokenizer.
struct PasskeyParts {
    int bos = -1;  // prompt_bos(tok): prepended when >= 0
    std::vector<int> intro;
    std::vector<int> question;
};
PasskeyParts encode_passkey_parts(const Tokenizer& tok);

struct PasskeyPrompt {
    std::vector<int> tokens;  // [ctx]
    int key = 0;
    int filler_tokens = 0;   // F
    int fact_begin = 0;      // position of the fact's first token: (bos ? 1 : 0) + |intro| + round(depth * F)
    int fact_tokens = 0;     // |fact|
    int question_begin = 0;  // position of the question's first token: ctx - |question|
};

// Fixed tokens of a prompt with this fact (everything but the filler); `ctx` must exceed it.
int passkey_overhead(const PasskeyParts& parts, int fact_tokens);

// Builds a prompt of exactly `ctx` tokens. Filler token i is filler[(offset + i) % filler.size()] (the
// book wraps around when the context is longer than it). Throws dsa::Error naming --ctx when ctx leaves no
// room for filler, or when filler is empty.
PasskeyPrompt build_passkey_prompt(const PasskeyParts& parts, std::span<const int> fact, int key,
                                   std::span<const int> filler, size_t offset, int ctx, double depth);
// The same, tokenizing passkey_fact(key) with `tok`.
PasskeyPrompt build_passkey_prompt(const PasskeyParts& parts, const Tokenizer& tok, int key,
                                   std::span<const int> filler, size_t offset, int ctx, double depth);

// One trial: its key and where its filler starts in the book. Trials depend only on (seed, index), so
// every context, depth and policy sees the same keys and filler and the comparison is paired.
struct PasskeyTrial {
    int key = 0;        // 5 digits, 10000..99999, distinct across the trials of one seed
    size_t offset = 0;  // in [0, filler_size)
};
std::vector<PasskeyTrial> draw_passkey_trials(uint64_t seed, int trials, size_t filler_size);

// The first run of ASCII digits in `text` ("" when there is none): " the key is 12345." -> "12345".
std::string first_digit_run(std::string_view text);
// True when the first digit run of the model's continuation is exactly the key.
bool passkey_correct(std::string_view continuation, int key);

}  // namespace dsa
