// --kernels rows: the attention step alone (selection + decode attention over every layer), timed by the
// backend, with its bytes and the speedup over full attention at the same depth.
#include <fmt/format.h>

#include <map>

#include "bench/bench_session.h"
#include "bench/bytes_model.h"
#include "bench/depth_cache.h"
#include "util/error.h"

namespace dsa {

void run_kernel_bench(BenchSession& s, const std::vector<PolicyRun>& runs, const RowSink& sink) {
    if (runs.empty() || runs.front().policy.kind != PolicyKind::Full) {
        throw Error("bench --kernels: the first run must be full attention (the speedup's base)");
    }
    const BenchParams& p = s.params();
    std::map<int, double> full_ms;  // depth -> full attention's mean ms
    for (const PolicyRun& run : runs) {
        const std::unique_ptr<Backend> backend = s.make_backend_for(run);
        const BytesModel bytes(s.model(), backend->kv_dtype(), backend->meta_minmax_dtype(), run.policy);
        DepthCache cache(*backend, s.ids(), run.policy.page_size, p.batch_size);
        bench_progress(run, describe_policy(run.policy));
        for (const int depth : p.depths) {
            cache.set_depth(depth);
            // One decode step on top of the depth: the step the timed attention repeats (its queries).
            backend->forward(cache.seq(), cache.ids().subspan(static_cast<size_t>(depth), 1),
                             LogitsMode::Last, cache.logits());
            const int n_tokens = cache.seq().n_tokens;
            const AttentionTiming t = backend->time_decode_attention(cache.seq(), p.reps);
            if (t.ms.size() != static_cast<size_t>(p.reps)) {
                throw Error("bench --kernels: the {} backend returned {} timings for {} repetitions",
                            backend->name(), t.ms.size(), p.reps);
            }
            BenchResult r = s.start_row(run, BenchTest::Attention, depth);
            r.samples_ms = t.ms;
            r.attended_tokens = t.attended_tokens;
            r.bytes = bytes.attention_step(n_tokens, t.attended_tokens);
            if (run.policy.kind == PolicyKind::Full) full_ms[depth] = r.mean_ms();
            const auto base = full_ms.find(depth);
            if (base != full_ms.end() && r.mean_ms() > 0) r.speedup = base->second / r.mean_ms();
            sink(r);
        }
    }
}

}  // namespace dsa
