// pp<N> and tg<N> rows: prompt processing and generation throughput at a cache depth, like llama-bench.
#include <fmt/format.h>

#include <memory>
#include <span>
#include <vector>

#include "bench/bench_session.h"
#include "bench/bytes_model.h"
#include "bench/depth_cache.h"
#include "engine/generator.h"
#include "util/timer.h"

namespace dsa {

namespace {

using Caches = std::vector<std::unique_ptr<DepthCache>>;

void report_fill(const PolicyRun& run, const DepthCache::Fill& fill, int depth) {
    if (fill.ms <= 0 || fill.tokens <= 0) return;
    bench_progress(
        run, fmt::format("cache filled to {} tokens: {} tokens in {:.2f} s ({:.1f} t/s, not timed)", depth,
                         fill.tokens, fill.ms / 1e3, 1e3 * fill.tokens / fill.ms));
}

// The first `batch` caches at `depth`; what it took to get there summed over them.
DepthCache::Fill set_depths(Caches& caches, int batch, int depth) {
    DepthCache::Fill total;
    for (int b = 0; b < batch; ++b) {
        const DepthCache::Fill f = caches[static_cast<size_t>(b)]->set_depth(depth);
        total.tokens += f.tokens;
        total.ms += f.ms;
    }
    return total;
}

// Every repetition prefills the same n tokens on top of the same depth, in each of the batch's sequences
// one after another (prefill runs one sequence per forward()); the first repetition is the warm-up.
BenchResult prompt_test(BenchSession& s, const PolicyRun& run, Backend& backend, const BytesModel& bytes,
                        Caches& caches, int batch, int depth, int n) {
    BenchResult r = s.start_row(run, BenchTest::Prompt, depth);
    r.batch = batch;
    r.n_prompt = n;
    bench_progress(run, fmt::format("{}: 1 warm-up + {} repetitions", r.test_name(), s.params().reps));
    const int chunk = prefill_batch(backend, s.params().batch_size);
    for (int rep = 0; rep <= s.params().reps; ++rep) {
        set_depths(caches, batch, depth);
        const double t0 = now_ms();
        for (int b = 0; b < batch; ++b) {
            DepthCache& c = *caches[static_cast<size_t>(b)];
            prefill(backend, c.seq(), c.ids().subspan(static_cast<size_t>(depth), static_cast<size_t>(n)),
                    chunk, c.logits(), false);
        }
        const double ms = now_ms() - t0;
        if (rep > 0) r.samples_ms.push_back(ms);
    }
    for (int pos = 0; pos < n; pos += chunk)
        r.bytes += bytes.prefill_chunk(depth + pos, std::min(chunk, n - pos));
    r.bytes = TrafficBytes{r.bytes.weights / n, r.bytes.kv / n, r.bytes.meta / n};
    return r;
}

// Every repetition decodes n steps of `batch` sequences (one token each) from the same depth; the warm-up
// is one step.
BenchResult gen_test(BenchSession& s, const PolicyRun& run, Backend& backend, const BytesModel& bytes,
                     Caches& caches, int batch, int depth, int n) {
    BenchResult r = s.start_row(run, BenchTest::Gen, depth);
    r.batch = batch;
    r.n_gen = n;
    bench_progress(run, fmt::format("{}: 1 warm-up step + {} repetitions", r.test_name(), s.params().reps));
    const size_t B = static_cast<size_t>(batch), V = static_cast<size_t>(s.model().config.vocab_size);
    std::vector<Sequence*> seqs(B);
    for (size_t b = 0; b < B; ++b) seqs[b] = &caches[b]->seq();
    std::vector<int> tokens(B);
    std::vector<float> logits(B * V);
    std::vector<double> attended(static_cast<size_t>(n));
    for (int rep = 0; rep <= s.params().reps; ++rep) {
        set_depths(caches, batch, depth);
        const int steps = rep == 0 ? 1 : n;
        const double t0 = now_ms();
        for (int i = 0; i < steps; ++i) {
            for (size_t b = 0; b < B; ++b) tokens[b] = caches[b]->ids()[static_cast<size_t>(depth + i)];
            backend.forward_batch(seqs, tokens, logits);
            attended[static_cast<size_t>(i)] = backend.last_stats().attended_tokens;
        }
        const double ms = now_ms() - t0;
        if (rep > 0) r.samples_ms.push_back(ms);
    }
    double attended_sum = 0;
    for (int i = 0; i < n; ++i) {
        const int n_tokens = depth + i + 1;
        // Both backends report it; one that reports nothing ran full attention.
        const double a = attended[static_cast<size_t>(i)] > 0 ? attended[static_cast<size_t>(i)] : n_tokens;
        attended_sum += a;
        r.bytes += bytes.decode_step(n_tokens, a, batch);
    }
    const double generated = static_cast<double>(n) * batch;
    r.bytes = TrafficBytes{r.bytes.weights / generated, r.bytes.kv / generated, r.bytes.meta / generated};
    r.attended_tokens = attended_sum / n;
    return r;
}

}  // namespace

void run_throughput_bench(BenchSession& s, const std::vector<PolicyRun>& runs, const RowSink& sink) {
    const BenchParams& p = s.params();
    for (const PolicyRun& run : runs) {
        const std::unique_ptr<Backend> backend = s.make_backend_for(run);
        const BytesModel bytes(s.model(), backend->kv_dtype(), backend->meta_minmax_dtype(), run.policy);
        Caches caches;
        for (int slot = 0; slot < p.max_batch(); ++slot)
            caches.push_back(
                std::make_unique<DepthCache>(*backend, s.ids(slot), run.policy.page_size, p.batch_size));
        bench_progress(run, describe_policy(run.policy));
        for (const int batch : p.batches) {
            for (const int depth : p.depths) {
                report_fill(run, set_depths(caches, batch, depth), depth);
                for (const int n : p.n_prompt)
                    sink(prompt_test(s, run, *backend, bytes, caches, batch, depth, n));
                for (const int n : p.n_gen) sink(gen_test(s, run, *backend, bytes, caches, batch, depth, n));
            }
        }
    }
}

}  // namespace dsa
