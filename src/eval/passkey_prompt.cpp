#include "eval/passkey_prompt.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "eval/prompt_bos.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dsa {

std::string passkey_fact(int key) {
    return fmt::format(" The pass key is {0}. Remember it. {0} is the pass key. ", key);
}

std::string passkey_answer(int key) {
    return fmt::format(" {}.", key);
}

PasskeyParts encode_passkey_parts(const Tokenizer& tok) {
    PasskeyParts p;
    p.bos = prompt_bos(tok);
    p.intro = tok.encode(kPasskeyIntro, false);
    p.question = tok.encode(kPasskeyQuestion, false);
    return p;
}

int passkey_overhead(const PasskeyParts& parts, int fact_tokens) {
    return (parts.bos >= 0 ? 1 : 0) + static_cast<int>(parts.intro.size()) + fact_tokens +
           static_cast<int>(parts.question.size());
}

PasskeyPrompt build_passkey_prompt(const PasskeyParts& parts, std::span<const int> fact, int key,
                                   std::span<const int> filler, size_t offset, int ctx, double depth) {
    const int overhead = passkey_overhead(parts, static_cast<int>(fact.size()));
    if (ctx <= overhead) {
        throw Error("--ctx {}: too short for a passkey prompt, which needs {} tokens besides the filler", ctx,
                    overhead);
    }
    if (filler.empty()) throw Error("--text: the filler text has no tokens");
    if (!(depth >= 0.0 && depth <= 1.0)) throw Error("--depth {}: must be in [0, 1]", depth);

    PasskeyPrompt p;
    p.key = key;
    p.filler_tokens = ctx - overhead;
    const int split = static_cast<int>(std::lround(depth * p.filler_tokens));
    p.tokens.reserve(static_cast<size_t>(ctx));
    if (parts.bos >= 0) p.tokens.push_back(parts.bos);
    p.tokens.insert(p.tokens.end(), parts.intro.begin(), parts.intro.end());
    const auto add_filler = [&](int from, int to) {
        for (int i = from; i < to; ++i)
            p.tokens.push_back(filler[(offset + static_cast<size_t>(i)) % filler.size()]);
    };
    add_filler(0, split);
    p.fact_begin = static_cast<int>(p.tokens.size());
    p.fact_tokens = static_cast<int>(fact.size());
    p.tokens.insert(p.tokens.end(), fact.begin(), fact.end());
    add_filler(split, p.filler_tokens);
    p.question_begin = static_cast<int>(p.tokens.size());
    p.tokens.insert(p.tokens.end(), parts.question.begin(), parts.question.end());
    return p;
}

PasskeyPrompt build_passkey_prompt(const PasskeyParts& parts, const Tokenizer& tok, int key,
                                   std::span<const int> filler, size_t offset, int ctx, double depth) {
    const std::vector<int> fact = tok.encode(passkey_fact(key), false);
    return build_passkey_prompt(parts, fact, key, filler, offset, ctx, depth);
}

std::vector<PasskeyTrial> draw_passkey_trials(uint64_t seed, int trials, size_t filler_size) {
    if (trials < 1) throw Error("--trials {}: must be >= 1", trials);
    if (trials > 90000) throw Error("--trials {}: at most 90000 distinct 5-digit keys exist", trials);
    if (filler_size == 0) throw Error("--text: the filler text has no tokens");
    // mt19937_64's raw output is specified by the standard (unlike the distributions), so the same seed
    // gives the same keys with every compiler; the modulo bias (< 1e-14) does not matter here.
    std::mt19937_64 rng(seed);
    std::vector<PasskeyTrial> out;
    while (static_cast<int>(out.size()) < trials) {
        PasskeyTrial t;
        t.key = 10000 + static_cast<int>(rng() % 90000);
        t.offset = static_cast<size_t>(rng() % filler_size);
        const bool seen =
            std::any_of(out.begin(), out.end(), [&](const PasskeyTrial& o) { return o.key == t.key; });
        if (!seen) out.push_back(t);
    }
    return out;
}

std::string first_digit_run(std::string_view text) {
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    const auto begin = std::find_if(text.begin(), text.end(), is_digit);
    const auto end = std::find_if_not(begin, text.end(), is_digit);
    return std::string(begin, end);
}

bool passkey_correct(std::string_view continuation, int key) {
    return first_digit_run(continuation) == std::to_string(key);
}

}  // namespace dsa
