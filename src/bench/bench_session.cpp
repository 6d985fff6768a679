#include "bench/bench_session.h"

#include <cstdio>

#include "bench/bandwidth.h"
#include "bench/depth_cache.h"
#include "util/thread_pool.h"

namespace dsa {

BenchSession::BenchSession(const Model& model, std::string model_name, const BenchParams& params)
    : model_(model), params_(params) {
    id_.model = std::move(model_name);
    id_.arch = model.config.arch_name;
    id_.params = model.parameter_count();
    id_.model_bytes = static_cast<double>(model.weight_bytes());
    for (int slot = 0; slot < params.max_batch(); ++slot) {
        ids_.push_back(random_token_ids(params.context_needed(), model.config.vocab_size,
                                        params.seed + static_cast<uint64_t>(slot)));
    }
}

std::unique_ptr<Backend> BenchSession::make_backend_for(const PolicyRun& run) {
    BackendOptions opts;
    opts.context = params_.context_needed();
    opts.max_batch = params_.max_batch();
    opts.threads = params_.threads;
    opts.page_size = run.policy.page_size;
    opts.attention = run.policy;
    std::unique_ptr<Backend> backend = make_backend(params_.device, model_, opts);
    // Set again explicitly: a backend without sparse attention throws here instead of running full attention
    // under a sparse policy's name.
    if (run.policy.kind != PolicyKind::Full) backend->set_attention(run.policy, false);
    // Before the bandwidth measurement, so that a backend that cannot time kernels fails at once.
    if (params_.kernels) backend->time_decode_attention(Sequence{}, 0);
    if (!measured_) {
        id_.backend = backend->name();
        id_.threads = ThreadPool::global().size();
        id_.bw_gbs = startup_bandwidth_gbs(*backend);
        measured_ = true;
        if (id_.bw_gbs > 0) {
            std::fprintf(stderr, "dsa bench: %s backend, memory bandwidth %.1f GB/s (copy, read + write)\n",
                         id_.backend.c_str(), id_.bw_gbs);
        } else {
            std::fprintf(stderr,
                         "dsa bench: %s backend does not measure its memory bandwidth: %% BW left empty\n",
                         id_.backend.c_str());
        }
    }
    return backend;
}

BenchResult BenchSession::start_row(const PolicyRun& run, BenchTest test, int depth) const {
    BenchResult r;
    r.id = id_;
    r.attn = run.attn;
    r.policy = describe_policy(run.policy);
    if (run.policy.kind != PolicyKind::Full) r.budget = run.policy.budget_tokens();
    r.test = test;
    r.n_depth = depth;
    return r;
}

void bench_progress(const PolicyRun& run, const std::string& what) {
    std::fprintf(stderr, "dsa bench [%s]: %s\n", run.label().c_str(), what.c_str());
    std::fflush(stderr);
}

}  // namespace dsa
