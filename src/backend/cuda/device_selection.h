#pragma once
// The sparse policies on the device: for one decode step of one layer, the page scores of the policy
// (kernels/page_scores.h), the top-k and page lists (kernels/page_select.h), handed to the decode attention
// kernel (kernels/decode_attention.h) in place of the block table. Fixed buffers sized once for the
// longest sequence, so the whole step is captured in the decode CUDA graph; nothing returns to the host but
// the tokens attended per list (for the timing lines).
#include <cstdint>

#include "attention/policy.h"
#include "backend/cuda/device_buffer.h"
#include "kernels/decode_attention.h"
#include "kernels/page_select.h"

namespace dsa::cuda {

// One layer's cache as the selection reads it.
struct LayerCache {
    const uint16_t* k_pool = nullptr;   // [num_pages][n_kv_heads][P][D] bf16
    const uint16_t* kminmax = nullptr;  // [num_pages][n_kv_heads][2][D] bf16
    const float* ksum = nullptr;        // [num_pages][n_kv_heads][D]
    const int32_t* count = nullptr;     // [num_pages][n_kv_heads]
};

// Where the step's sequences are: block tables and lengths on the device.
struct StepSequences {
    const int32_t* block_tables = nullptr;  // [n_seq][table_stride]
    int64_t table_stride = 0;
    const int32_t* seq_len = nullptr;  // [n_seq] tokens cached, the current one included
    int n_seq = 1;                     // at most the selection's n_seq
};

class DeviceSelection {
public:
    // policy: quest, nsa, window or oracle (validated), with the cache's page size. n_seq: the most sequences
    // one step selects for; max_tokens: the longest sequence. Throws dsa::Error for shapes the kernels do not
    // take.
    DeviceSelection(const AttentionPolicy& policy, int n_seq, int n_heads, int n_kv_heads, int head_dim,
                    int max_tokens);

    bool sparse_layer(int layer) const { return layer >= policy_.dense_layers; }
    int n_lists() const { return params_.per_head_lists ? params_.n_heads : params_.n_kv_heads; }

    // Enqueues the layer's scores and selection; `attended` ([n_seq][n_lists] int32, or null) gets the
    // tokens each list attends. q: [n_seq][n_heads][D] bf16 post-RoPE.
    void select(const LayerCache& cache, const uint16_t* q, const StepSequences& seqs, int32_t* attended,
                cudaStream_t stream) {
        score(cache, q, seqs, stream);
        pick(seqs, attended, stream);
    }
    // The two halves of select(), for timing them apart: the per-head scores, then top-k and lists.
    void score(const LayerCache& cache, const uint16_t* q, const StepSequences& seqs, cudaStream_t stream);
    void pick(const StepSequences& seqs, int32_t* attended, cudaStream_t stream);
    // Points the decode attention at the lists select() built.
    void attach(DecodeAttentionParams& da) const;

private:
    AttentionPolicy policy_;
    int n_seq_, head_dim_, max_tokens_, score_stride_;
    PageSelectParams params_;
    DeviceBuffer scores_;                 // [n_seq][n_heads][score_stride] fp32
    DeviceBuffer keys_;                   // [n_seq][n_lists][score_stride] uint32
    DeviceBuffer chunk_max_, chunk_sum_;  // gqa=softmax: [n_seq][n_heads][chunk_stride] fp32
    DeviceBuffer lists_;                  // [n_seq][n_lists][list_stride] page ids
    DeviceBuffer ranges_;                 // [n_seq][n_lists][list_stride] lo | hi << 16
    DeviceBuffer len_;                    // [n_seq][n_lists]
};

}  // namespace dsa::cuda
