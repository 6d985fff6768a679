#include "eval/passkey.h"

#include <algorithm>
#include <cstdio>

#include "engine/generator.h"
#include "engine/sequence_guard.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dsa {

int PasskeyCell::correct() const {
    return static_cast<int>(
        std::count_if(trials.begin(), trials.end(), [](const auto& t) { return t.correct; }));
}

double PasskeyCell::accuracy() const {
    return trials.empty() ? 0.0 : static_cast<double>(correct()) / trials.size();
}

PasskeyAnswer answer_passkey(Backend& backend, const PasskeyPrompt& prompt, int n_predict,
                             std::span<const int> eos_ids, int batch) {
    const int n = static_cast<int>(prompt.tokens.size());
    if (n + n_predict > backend.context_capacity()) {
        throw Error("passkey prompt of {} tokens + {} answer tokens does not fit the context of {} tokens", n,
                    n_predict, backend.context_capacity());
    }
    SequenceGuard guard(backend);
    Sequence& seq = guard.seq();
    std::vector<float> logits(static_cast<size_t>(backend.model().config.vocab_size));  // [vocab]
    const std::span<const int> tokens(prompt.tokens);
    prefill(backend, seq, tokens.first(static_cast<size_t>(prompt.question_begin)), batch, logits, false);

    PasskeyAnswer ans;
    const auto step = [&](int id) {
        backend.forward(seq, std::span<const int>(&id, 1), LogitsMode::Last, logits);
        ans.attended_sum += backend.last_stats().attended_tokens;
        ++ans.decode_steps;
    };
    for (size_t i = static_cast<size_t>(prompt.question_begin); i < tokens.size(); ++i) step(tokens[i]);

    SamplerParams greedy;
    greedy.temperature = 0;
    Sampler sampler(greedy);
    while (static_cast<int>(ans.ids.size()) < n_predict) {
        const int id = sampler.sample(logits, {});
        if (std::find(eos_ids.begin(), eos_ids.end(), id) != eos_ids.end()) break;
        ans.ids.push_back(id);
        // The last token is only read, never run: its K/V would serve no further step.
        if (static_cast<int>(ans.ids.size()) < n_predict) step(id);
    }
    return ans;
}

int passkey_answer_budget(const Tokenizer& tok, int key) {
    return static_cast<int>(tok.encode(passkey_answer(key), false).size()) + 2;
}

std::vector<PasskeyCell> run_passkey(Backend& backend, const Tokenizer& tok, std::span<const int> filler,
                                     std::span<const PasskeyTrial> trials, const PasskeySettings& settings) {
    const PasskeyParts parts = encode_passkey_parts(tok);
    std::vector<PasskeyCell> cells;
    for (const int ctx : settings.contexts) {
        for (const double depth : settings.depths) {
            PasskeyCell cell;
            cell.ctx = ctx;
            cell.depth = depth;
            double attended = 0;
            int steps = 0;
            for (size_t t = 0; t < trials.size(); ++t) {
                const PasskeyTrial& trial = trials[t];
                const PasskeyPrompt prompt =
                    build_passkey_prompt(parts, tok, trial.key, filler, trial.offset, ctx, depth);
                const PasskeyAnswer ans = answer_passkey(
                    backend, prompt, passkey_answer_budget(tok, trial.key), settings.eos_ids, settings.batch);
                PasskeyTrialResult r;
                r.key = trial.key;
                r.output = tok.decode(ans.ids, true);
                r.correct = passkey_correct(r.output, trial.key);
                attended += ans.attended_sum;
                steps += ans.decode_steps;
                if (settings.progress) {
                    std::fprintf(stderr,
                                 "dsa: passkey [%s] ctx %d depth %.2f trial %zu/%zu: key %d -> \"%s\" %s\n",
                                 settings.label.c_str(), ctx, depth, t + 1, trials.size(), trial.key,
                                 first_digit_run(r.output).c_str(), r.correct ? "ok" : "wrong");
                    std::fflush(stderr);
                }
                cell.trials.push_back(std::move(r));
            }
            cell.attended_mean = steps > 0 ? attended / steps : 0.0;
            cells.push_back(std::move(cell));
        }
    }
    return cells;
}

}  // namespace dsa
