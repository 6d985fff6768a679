#include "backend/cuda/device_selection.h"

#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "kernels/page_scores.h"
#include "util/error.h"

namespace dsa::cuda {

namespace {

GroupReduce reduce_of(GqaMode m) {
    switch (m) {
        case GqaMode::Sum:
            return GroupReduce::Sum;
        case GqaMode::Max:
            return GroupReduce::Max;
        case GqaMode::Softmax:
        case GqaMode::PerHead:
            break;
    }
    return GroupReduce::Softmax;
}

}  // namespace

DeviceSelection::DeviceSelection(const AttentionPolicy& policy, int n_seq, int n_heads, int n_kv_heads,
                                 int head_dim, int max_tokens)
    : policy_(policy), n_seq_(n_seq), head_dim_(head_dim), max_tokens_(max_tokens) {
    if (policy.kind == PolicyKind::Full) throw Error("DeviceSelection: the full policy selects nothing");
    validate_policy(policy);
    const int P = policy.page_size;
    if (n_heads / n_kv_heads > 16)
        throw Error(
            "--device cuda: sparse attention takes at most 16 query heads per KV head, the model has {}",
            n_heads / n_kv_heads);
    PageSelectParams& s = params_;
    s.n_seq = n_seq;
    s.n_heads = n_heads;
    s.n_kv_heads = n_kv_heads;
    s.page_size = P;
    s.per_head_lists = policy.gqa == GqaMode::PerHead;
    s.reduce = reduce_of(policy.gqa);
    s.softmax_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    // Each policy in page_select's terms (selection.h gives the same rules in the CPU's).
    switch (policy.kind) {
        case PolicyKind::Quest:
            // Sum and max reduce inside the score kernel: the selection then reads 1 row per list, not G.
            s.group_rows = !s.per_head_lists && s.reduce != GroupReduce::Softmax;
            s.dense_below_or_at = policy.budget / P - 1;  // B / P >= n_pages: every page fits the budget
            s.forced_first = policy.sink_pages;
            s.forced_last = policy.recent_pages;
            s.select_total = policy.budget / P - 1;  // the current page takes one of the B / P
            break;
        case PolicyKind::Nsa:
            s.dense_below_or_at = policy.top_n;
            s.forced_first = policy.init_blocks;
            s.forced_last = policy.local_blocks;
            s.select_total = policy.top_n;
            s.window_tokens = policy.window;
            break;
        case PolicyKind::Window:
            s.dense_below_or_at = -1;  // dense only when the ranges cover everything: the same entries
            s.with_current_page = false;
            s.sink_tokens = policy.sink_tokens;
            s.window_tokens = policy.window;
            break;
        case PolicyKind::Oracle:
            s.tokens_are_items = true;
            s.dense_below_or_at = policy.budget;
            s.select_total = policy.budget;
            s.with_current_page = false;
            break;
        case PolicyKind::Full:
            break;
    }
    const int max_pages = (max_tokens + P - 1) / P;
    // A multiple of 4: page_select stages the score rows in 16-byte copies.
    score_stride_ = (std::max(1, policy.kind == PolicyKind::Oracle ? max_tokens : max_pages) + 3) / 4 * 4;
    s.score_stride = score_stride_;
    s.list_stride = page_list_capacity(s, max_tokens);
    const size_t lists = static_cast<size_t>(n_seq) * n_lists();
    if (policy.kind != PolicyKind::Window) {
        scores_ =
            DeviceBuffer(static_cast<size_t>(n_seq) * n_heads * score_stride_ * 4, "sparse page scores");
        keys_ = DeviceBuffer(lists * score_stride_ * 4, "sparse selection keys");
        s.scores = scores_.as<float>();
        s.keys = keys_.as<uint32_t>();
        if (s.reduce == GroupReduce::Softmax && !s.per_head_lists) {
            s.chunk_items = score_chunk_items(s.tokens_are_items);
            s.chunk_stride = (score_stride_ + s.chunk_items - 1) / s.chunk_items;
            const size_t bytes = static_cast<size_t>(n_seq) * n_heads * s.chunk_stride * 4;
            chunk_max_ = DeviceBuffer(bytes, "sparse softmax partials");
            chunk_sum_ = DeviceBuffer(bytes, "sparse softmax partials");
            s.chunk_max = chunk_max_.as<float>();
            s.chunk_sum = chunk_sum_.as<float>();
        }
    }
    lists_ = DeviceBuffer(lists * s.list_stride * 4, "sparse page lists");
    ranges_ = DeviceBuffer(lists * s.list_stride * 4, "sparse page list ranges");
    len_ = DeviceBuffer(lists * 4, "sparse page list lengths");
    s.page_lists = lists_.as<int32_t>();
    s.slot_ranges = ranges_.as<int32_t>();
    s.list_len = len_.as<int32_t>();
}

void DeviceSelection::score(const LayerCache& cache, const uint16_t* q, const StepSequences& seqs,
                            cudaStream_t stream) {
    if (seqs.n_seq < 1 || seqs.n_seq > n_seq_)
        throw Error("DeviceSelection: {} sequences, buffers for {}", seqs.n_seq, n_seq_);
    PageScoreParams sp;
    sp.q = q;
    sp.kminmax = cache.kminmax;
    sp.ksum = cache.ksum;
    sp.count = cache.count;
    sp.k_pool = cache.k_pool;
    sp.block_tables = seqs.block_tables;
    sp.table_stride = seqs.table_stride;
    sp.seq_len = seqs.seq_len;
    sp.scores = scores_.as<float>();
    sp.score_stride = score_stride_;
    sp.max_items = score_stride_;
    sp.n_seq = seqs.n_seq;
    sp.n_heads = params_.n_heads;
    sp.n_kv_heads = params_.n_kv_heads;
    sp.head_dim = head_dim_;
    sp.page_size = params_.page_size;
    sp.chunk_max = chunk_max_.as<float>();
    sp.chunk_sum = chunk_sum_.as<float>();
    sp.chunk_stride = params_.chunk_stride;
    sp.softmax_scale = params_.softmax_scale;
    if (params_.group_rows)
        sp.rows = params_.reduce == GroupReduce::Max ? ScoreRows::GroupMax : ScoreRows::GroupSum;
    switch (policy_.kind) {
        case PolicyKind::Quest:
            quest_score(sp, stream);
            break;
        case PolicyKind::Nsa:
            nsa_score(sp, stream);
            break;
        case PolicyKind::Oracle:
            oracle_score(sp, stream);
            break;
        case PolicyKind::Window:
        case PolicyKind::Full:
            break;
    }
}

void DeviceSelection::pick(const StepSequences& seqs, int32_t* attended, cudaStream_t stream) {
    if (seqs.n_seq < 1 || seqs.n_seq > n_seq_)
        throw Error("DeviceSelection: {} sequences, buffers for {}", seqs.n_seq, n_seq_);
    PageSelectParams p = params_;
    p.n_seq = seqs.n_seq;
    p.block_tables = seqs.block_tables;
    p.table_stride = seqs.table_stride;
    p.seq_len = seqs.seq_len;
    p.attended = attended;
    page_select(p, max_tokens_, stream);
}

void DeviceSelection::attach(DecodeAttentionParams& da) const {
    da.page_lists = params_.page_lists;
    da.slot_ranges = params_.slot_ranges;
    da.list_len = params_.list_len;
    da.list_head_stride = params_.list_stride;
    da.list_seq_stride = static_cast<int64_t>(n_lists()) * params_.list_stride;
    da.per_head_lists = params_.per_head_lists;
}

}  // namespace dsa::cuda
