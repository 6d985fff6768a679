#include "engine/generator.h"

#include <algorithm>

#include "engine/sequence_guard.h"
#include "util/error.h"
#include "util/timer.h"

namespace dsa {

namespace {

double per_item(double ms, int n) {
    return n > 0 ? ms / n : 0.0;
}
double per_second(double ms, int n) {
    return ms > 0 ? 1000.0 * n / ms : 0.0;
}

}  // namespace

int prefill_batch(const Backend& backend, int batch) {
    if (batch < 0) throw Error("prefill batch size must be >= 0 (0: the backend's chunk), got {}", batch);
    return batch > 0 ? batch : backend.prefill_chunk();
}

int prefill(Backend& backend, Sequence& seq, std::span<const int> tokens, int batch, std::span<float> logits,
            bool show_progress) {
    batch = prefill_batch(backend, batch);
    const size_t n = tokens.size();
    // A forward() of one token is a decode step (it attends through the sparse policy), so no chunk is a
    // single token unless the whole prompt is: batch 1 runs pairs, and a 1-token remainder joins the last
    // chunk (batch + 1 tokens).
    const size_t chunk = std::max<size_t>(2, static_cast<size_t>(batch));
    const int n_chunks =
        static_cast<int>(std::max<size_t>(n > 0 ? 1 : 0, n / chunk + (n % chunk > 1 ? 1 : 0)));
    // Progress only matters when prefill takes a while: more than two chunks (> 1024 tokens by default).
    const bool progress = show_progress && n_chunks > 2;
    for (size_t begin = 0, len = 0; begin < n; begin += len) {
        len = std::min(chunk, n - begin);
        if (n - begin - len == 1) ++len;
        // The contract has no logits-free mode; Last costs one lm_head row per chunk, which is noise next to
        // the chunk's own batch x weights GEMMs, and the final chunk's call leaves the logits we sample from.
        backend.forward(seq, tokens.subspan(begin, len), LogitsMode::Last, logits);
        if (progress) {
            std::fprintf(stderr, "dsa: prefill %zu/%zu tokens\n", begin + len, n);
            std::fflush(stderr);
        }
    }
    return n_chunks;
}

GenerateResult generate(Backend& backend, Sampler& sampler, std::span<const int> prompt,
                        const GenerateParams& params, const TokenCallback& on_token) {
    const double t_start = now_ms();
    if (prompt.empty()) throw Error("the prompt is empty (no tokens to start from)");
    const int capacity = backend.context_capacity();
    if (static_cast<int64_t>(prompt.size()) > capacity) {
        throw Error("prompt has {} tokens but the context holds {}", prompt.size(), capacity);
    }
    if (params.n_predict < -1) throw Error("n_predict must be >= -1, got {}", params.n_predict);

    GenerateResult result;
    GenerateTimings& t = result.timings;
    SequenceGuard guard(backend);
    Sequence& seq = guard.seq();
    std::vector<float> logits(static_cast<size_t>(backend.model().config.vocab_size));  // [vocab]

    double t0 = now_ms();
    t.prompt_chunks = prefill(backend, seq, prompt, params.batch, logits, params.show_progress);
    t.prompt_ms = now_ms() - t0;
    t.prompt_tokens = static_cast<int>(prompt.size());

    std::vector<int> history(prompt.begin(), prompt.end());  // prompt + generated, for repetition penalty
    const auto is_eos = [&](int id) {
        return std::find(params.eos_ids.begin(), params.eos_ids.end(), id) != params.eos_ids.end();
    };
    const auto limit_reached = [&] {
        return params.n_predict >= 0 && static_cast<int>(result.tokens.size()) >= params.n_predict;
    };

    while (!limit_reached()) {
        t0 = now_ms();
        const int id = sampler.sample(logits, history);
        t.sample_ms += now_ms() - t0;
        ++t.sample_runs;
        if (is_eos(id)) {
            result.stop = StopReason::Eos;
            break;
        }
        result.tokens.push_back(id);
        history.push_back(id);
        if (on_token) on_token(id);
        // The last token is only sampled, never run: its K/V would serve no further step.
        if (limit_reached()) break;
        if (seq.n_tokens >= capacity) {
            result.stop = StopReason::ContextFull;
            break;
        }
        t0 = now_ms();
        backend.forward(seq, std::span<const int>(&id, 1), LogitsMode::Last, logits);
        t.eval_ms += now_ms() - t0;
        ++t.eval_runs;
        t.attended_sum += backend.last_stats().attended_tokens;
    }
    t.wall_ms = now_ms() - t_start;
    return result;
}

std::vector<int> collect_eos_ids(const std::vector<int>& config_eos, int tokenizer_eos) {
    std::vector<int> ids = config_eos;
    if (tokenizer_eos >= 0) ids.push_back(tokenizer_eos);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

void print_timings(std::FILE* out, const GenerateTimings& t) {
    std::fprintf(out, "dsa:        load time = %10.2f ms\n", t.load_ms);
    std::fprintf(
        out, "dsa:    sampling time = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)\n",
        t.sample_ms, t.sample_runs, per_item(t.sample_ms, t.sample_runs),
        per_second(t.sample_ms, t.sample_runs));
    std::fprintf(
        out, "dsa: prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)\n",
        t.prompt_ms, t.prompt_tokens, per_item(t.prompt_ms, t.prompt_tokens),
        per_second(t.prompt_ms, t.prompt_tokens));
    std::fprintf(
        out, "dsa:        eval time = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)\n",
        t.eval_ms, t.eval_runs, per_item(t.eval_ms, t.eval_runs), per_second(t.eval_ms, t.eval_runs));
    std::fprintf(out, "dsa:       total time = %10.2f ms / %5d tokens\n", t.total_ms(),
                 t.prompt_tokens + t.eval_runs);
}

}  // namespace dsa
