// pp<N> and tg<N> rows: prompt processing and generation throughput at a cache depth, like llama-bench.
#include <fmt/format.h>

#include <vector>

#include "bench/bench_session.h"
#include "bench/bytes_model.h"
#include "bench/depth_cache.h"
#include "engine/generator.h"
#include "util/timer.h"

namespace dsa {

namespace {

void report_fill(const PolicyRun& run, const DepthCache::Fill& fill, int depth) {
    if (fill.ms <= 0 || fill.tokens <= 0) return;
    bench_progress(
        run, fmt::format("cache filled to {} tokens: {} tokens in {:.2f} s ({:.1f} t/s, not timed)", depth,
                         fill.tokens, fill.ms / 1e3, 1e3 * fill.tokens / fill.ms));
}

// Every repetition prefills the same n tokens on top of the same depth; the first one is the warm-up.
BenchResult prompt_test(BenchSession& s, const PolicyRun& run, Backend& backend, const BytesModel& bytes,
                        DepthCache& cache, int depth, int n) {
    BenchResult r = s.start_row(run, BenchTest::Prompt, depth);
    r.n_prompt = n;
    bench_progress(run, fmt::format("{}: 1 warm-up + {} repetitions", r.test_name(), s.params().reps));
    const int chunk = s.params().batch_size;
    const std::span<const int> tokens =
        cache.ids().subspan(static_cast<size_t>(depth), static_cast<size_t>(n));
    for (int rep = 0; rep <= s.params().reps; ++rep) {
        cache.set_depth(depth);
        const double t0 = now_ms();
        prefill(backend, cache.seq(), tokens, chunk, cache.logits(), false);
        const double ms = now_ms() - t0;
        if (rep > 0) r.samples_ms.push_back(ms);
    }
    for (int pos = 0; pos < n; pos += chunk)
        r.bytes += bytes.prefill_chunk(depth + pos, std::min(chunk, n - pos));
    r.bytes = TrafficBytes{r.bytes.weights / n, r.bytes.kv / n, r.bytes.meta / n};
    return r;
}

// Every repetition decodes n single tokens from the same depth; the warm-up is one step.
BenchResult gen_test(BenchSession& s, const PolicyRun& run, Backend& backend, const BytesModel& bytes,
                     DepthCache& cache, int depth, int n) {
    BenchResult r = s.start_row(run, BenchTest::Gen, depth);
    r.n_gen = n;
    bench_progress(run, fmt::format("{}: 1 warm-up step + {} repetitions", r.test_name(), s.params().reps));
    const std::span<const int> tokens =
        cache.ids().subspan(static_cast<size_t>(depth), static_cast<size_t>(n));
    std::vector<double> attended(static_cast<size_t>(n));
    for (int rep = 0; rep <= s.params().reps; ++rep) {
        cache.set_depth(depth);
        const int steps = rep == 0 ? 1 : n;
        const double t0 = now_ms();
        for (int i = 0; i < steps; ++i) {
            backend.forward(cache.seq(), tokens.subspan(static_cast<size_t>(i), 1), LogitsMode::Last,
                            cache.logits());
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
        r.bytes += bytes.decode_step(n_tokens, a);
    }
    r.bytes = TrafficBytes{r.bytes.weights / n, r.bytes.kv / n, r.bytes.meta / n};
    r.attended_tokens = attended_sum / n;
    return r;
}

}  // namespace

void run_throughput_bench(BenchSession& s, const std::vector<PolicyRun>& runs, const RowSink& sink) {
    const BenchParams& p = s.params();
    for (const PolicyRun& run : runs) {
        const std::unique_ptr<Backend> backend = s.make_backend_for(run);
        const BytesModel bytes(s.model(), backend->kv_dtype(), backend->meta_minmax_dtype(), run.policy);
        DepthCache cache(*backend, s.ids(), run.policy.page_size, p.batch_size);
        bench_progress(run, describe_policy(run.policy));
        for (const int batch : p.batches) {
            for (const int depth : p.depths) {
                report_fill(run, cache.set_depth(depth), depth);
                for (const int n : p.n_prompt) {
                    BenchResult r = prompt_test(s, run, *backend, bytes, cache, depth, n);
                    r.batch = batch;
                    sink(r);
                }
                for (const int n : p.n_gen) {
                    BenchResult r = gen_test(s, run, *backend, bytes, cache, depth, n);
                    r.batch = batch;
                    sink(r);
                }
            }
        }
    }
}

}  // namespace dsa
