#pragma once
// What the rows of one `dsa bench` run share: the model, the token stream that fills every cache, one
// backend per attention policy (each with the policy's page size), and the start-up bandwidth.
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/bench_params.h"
#include "bench/bench_result.h"
#include "engine/backend.h"
#include "eval/policy_runs.h"

namespace dsa {

using RowSink = std::function<void(const BenchResult&)>;

class BenchSession {
public:
    BenchSession(const Model& model, std::string model_name, const BenchParams& params);

    // A backend for the run's policy, with room for params.max_batch() sequences of params.context_needed()
    // tokens. The first one
    // measures the memory bandwidth (stderr says how) and completes identity().
    std::unique_ptr<Backend> make_backend_for(const PolicyRun& run);

    const Model& model() const { return model_; }
    const BenchParams& params() const { return params_; }
    const BenchIdentity& identity() const { return id_; }
    // [context_needed] the random token stream of batch slot `slot` (< params.max_batch()); slot 0 is also
    // the stream of --kernels and of batch-1 rows, each slot has its own seed.
    std::span<const int> ids(int slot = 0) const { return ids_[static_cast<size_t>(slot)]; }

    // A row with the identity and the run's policy filled in.
    BenchResult start_row(const PolicyRun& run, BenchTest test, int depth) const;

private:
    const Model& model_;
    const BenchParams& params_;
    BenchIdentity id_;
    std::vector<std::vector<int>> ids_;  // [max_batch][context_needed]
    bool measured_ = false;
};

// "dsa bench [quest B=2048] ..." progress line on stderr.
void bench_progress(const PolicyRun& run, const std::string& what);

// pp<N> and tg<N> at every depth, for every run, in the order given.
void run_throughput_bench(BenchSession& session, const std::vector<PolicyRun>& runs, const RowSink& sink);

// --kernels: the attention step alone at every depth; `runs` must start with full (the speedup's base).
void run_kernel_bench(BenchSession& session, const std::vector<PolicyRun>& runs, const RowSink& sink);

}  // namespace dsa
