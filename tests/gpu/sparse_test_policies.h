#pragma once
// Small-context versions of the presets for the GPU model tests: a few pages compete in the ~150-token
// prompts, and dense_layers 1 leaves sparse layers in the 2-3 layer test models.
#include <vector>

#include "attention/policy.h"

namespace dsa::test {

inline std::vector<AttentionPolicy> test_policies() {
    std::vector<AttentionPolicy> v;
    AttentionPolicy quest;
    quest.kind = PolicyKind::Quest;
    quest.budget = 64;
    quest.dense_layers = 1;
    for (GqaMode g : {GqaMode::Softmax, GqaMode::Sum, GqaMode::Max, GqaMode::PerHead}) {
        quest.gqa = g;
        v.push_back(quest);
    }
    quest.gqa = GqaMode::Softmax;
    quest.sink_pages = 1;
    quest.recent_pages = 1;
    v.push_back(quest);
    AttentionPolicy nsa;
    nsa.kind = PolicyKind::Nsa;
    nsa.top_n = 4;
    nsa.init_blocks = 1;
    nsa.local_blocks = 1;
    nsa.window = 24;
    nsa.dense_layers = 1;
    v.push_back(nsa);
    AttentionPolicy window;
    window.kind = PolicyKind::Window;
    window.sink_tokens = 4;
    window.window = 40;
    window.dense_layers = 1;
    v.push_back(window);
    AttentionPolicy oracle;
    oracle.kind = PolicyKind::Oracle;
    oracle.budget = 48;
    oracle.dense_layers = 1;
    v.push_back(oracle);
    for (AttentionPolicy& p : v) validate_policy(p);
    return v;
}

// How far a sparse policy's GPU logits may be from the CPU's in these tests (test_cuda_sparse_model.cpp says
// why): every step within max_step_error, and at most allowed_steps_over of `steps` steps above 1e-2.
inline double max_step_error(const AttentionPolicy& p) {
    return p.kind == PolicyKind::Window ? 0.03 : p.kind == PolicyKind::Oracle ? 0.15 : 0.5;
}

inline int allowed_steps_over(const AttentionPolicy& p, int steps) {
    return p.kind == PolicyKind::Window ? 2 : p.kind == PolicyKind::Oracle ? steps : steps / 3;
}

}  // namespace dsa::test
