#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/generator.h"
#include "engine/sequence_guard.h"
#include "util/error.h"
#include "util/timer.h"

namespace dsa {

namespace {

int text_per_window(int ctx, int bos) {
    return bos >= 0 ? ctx - 1 : ctx;
}

}  // namespace

int count_ppl_windows(size_t n_text_tokens, int ctx, int bos) {
    return static_cast<int>(n_text_tokens / static_cast<size_t>(text_per_window(ctx, bos)));
}

std::vector<int> ppl_window(std::span<const int> text_tokens, int ctx, int bos, int k) {
    const size_t per = static_cast<size_t>(text_per_window(ctx, bos));
    const size_t begin = static_cast<size_t>(k) * per;
    if (begin + per > text_tokens.size()) throw Error("perplexity window {} is past the end of the text", k);
    std::vector<int> w;
    w.reserve(static_cast<size_t>(ctx));
    if (bos >= 0) w.push_back(bos);
    w.insert(w.end(), text_tokens.begin() + static_cast<std::ptrdiff_t>(begin),
             text_tokens.begin() + static_cast<std::ptrdiff_t>(begin + per));
    return w;
}

int ppl_scored_per_window(int ctx) {
    return ctx - 1 - ctx / 2;
}

double token_nll(std::span<const float> logits, int target) {
    if (target < 0 || static_cast<size_t>(target) >= logits.size()) {
        throw Error("token id {} is outside the vocabulary [0, {})", target, logits.size());
    }
    double max = logits[0];
    for (const float v : logits) max = std::max(max, static_cast<double>(v));
    double sum = 0;
    for (const float v : logits) sum += std::exp(static_cast<double>(v) - max);
    return std::log(sum) + max - static_cast<double>(logits[static_cast<size_t>(target)]);
}

void NllAccumulator::add(double nll) {
    sum_ += nll;
    sum_sq_ += nll * nll;
    ++count_;
}

void NllAccumulator::merge(const NllAccumulator& o) {
    sum_ += o.sum_;
    sum_sq_ += o.sum_sq_;
    count_ += o.count_;
}

double NllAccumulator::mean() const {
    return count_ > 0 ? sum_ / static_cast<double>(count_) : 0.0;
}

double NllAccumulator::ppl() const {
    return std::exp(mean());
}

double NllAccumulator::ppl_error() const {
    if (count_ < 2) return 0.0;
    const double m = mean();
    const double var = sum_sq_ / static_cast<double>(count_) - m * m;
    if (!(var > 0)) return 0.0;
    return std::exp(m) * std::sqrt(var / static_cast<double>(count_ - 1));
}

double score_ppl_window(Backend& backend, std::span<const int> window, const PplSettings& settings,
                        NllAccumulator& acc) {
    const int ctx = static_cast<int>(window.size());
    const int first = ctx / 2;  // positions [first, ctx - 1) are scored
    const size_t V = static_cast<size_t>(backend.model().config.vocab_size);
    SequenceGuard guard(backend);
    Sequence& seq = guard.seq();
    std::vector<float> logits(V);  // [vocab]
    prefill(backend, seq, window.first(static_cast<size_t>(first)), settings.batch, logits, false);

    double attended = 0;
    if (settings.decode_scored) {
        for (int j = first; j < ctx - 1; ++j) {
            backend.forward(seq, window.subspan(static_cast<size_t>(j), 1), LogitsMode::Last, logits);
            acc.add(token_nll(logits, window[static_cast<size_t>(j) + 1]));
            attended += backend.last_stats().attended_tokens;
        }
        return attended;
    }
    const int chunk = std::max(1, settings.batch);
    std::vector<float> all(static_cast<size_t>(std::min(chunk, ctx - 1 - first)) * V);  // [T][vocab]
    for (int begin = first; begin < ctx - 1; begin += chunk) {
        const int len = std::min(chunk, ctx - 1 - begin);
        const std::span<float> out(all.data(), static_cast<size_t>(len) * V);
        backend.forward(seq, window.subspan(static_cast<size_t>(begin), static_cast<size_t>(len)),
                        LogitsMode::All, out);
        for (int t = 0; t < len; ++t) {
            acc.add(token_nll(out.subspan(static_cast<size_t>(t) * V, V),
                              window[static_cast<size_t>(begin + t) + 1]));
        }
        attended += backend.last_stats().attended_tokens * len;
    }
    return attended;
}

PplResult run_perplexity(Backend& backend, std::span<const int> text_tokens, const PplSettings& settings) {
    if (settings.ctx < 4) throw Error("-c {}: a perplexity window needs at least 4 tokens", settings.ctx);
    if (settings.ctx > backend.context_capacity()) {
        throw Error("-c {}: larger than the backend's context of {} tokens", settings.ctx,
                    backend.context_capacity());
    }
    const int available = count_ppl_windows(text_tokens.size(), settings.ctx, settings.bos);
    if (available < 1) {
        throw Error("-f: the text has {} tokens, fewer than one window of -c {} tokens", text_tokens.size(),
                    settings.ctx);
    }
    const int windows = settings.max_windows < 0 ? available : std::min(available, settings.max_windows);

    PplResult r;
    const double t0 = now_ms();
    double attended = 0;
    for (int k = 0; k < windows; ++k) {
        const std::vector<int> w = ppl_window(text_tokens, settings.ctx, settings.bos, k);
        NllAccumulator window;
        attended += score_ppl_window(backend, w, settings, window);
        r.nll.merge(window);
        ++r.windows;
        if (settings.progress) {
            std::fprintf(
                stderr,
                "dsa: ppl [%s] window %d/%d: ppl = %.4f, so far %.4f +/- %.4f (%lld tokens, %.1f s)\n",
                settings.label.c_str(), k + 1, windows, window.ppl(), r.nll.ppl(), r.nll.ppl_error(),
                static_cast<long long>(r.nll.count()), (now_ms() - t0) / 1000.0);
            std::fflush(stderr);
        }
    }
    r.seconds = (now_ms() - t0) / 1000.0;
    r.attended_mean = r.nll.count() > 0 ? attended / static_cast<double>(r.nll.count()) : 0.0;
    return r;
}

}  // namespace dsa
