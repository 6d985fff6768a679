#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_kv_cache.h"
#include "backend/cuda/device_selection.h"
#include "backend/cuda/device_weights.h"
#include "backend/cuda/linear.h"
#include "kernels/argmax.h"
#include "kernels/attention_input.h"
#include "kernels/decode_attention.h"
#include "kernels/embed.h"
#include "kernels/gemv.h"
#include "kernels/kv_metadata.h"
#include "kernels/launch.h"
#include "kernels/prefill_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "util/error.h"

namespace dsa {

using namespace cuda;

namespace {

constexpr int kLogitsRows = 256;  // LM-head rows per pass when every position's logits are wanted
constexpr size_t kHeadroom = size_t{512} << 20;  // left free after the KV cache (driver, graphs, cuBLAS)

constexpr int kMaxBatch = kLogitsRows;  // forward_batch() sequences: one logits row each

double gib(size_t b) {
    return static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0);
}

}  // namespace

// Owns the backend's stream; declared first in Impl so it outlives everything that enqueues on it, also
// when the constructor throws half-way. Being the first thing made, it is also where "no device" is said.
struct StreamOwner {
    cudaStream_t stream = nullptr;
    StreamOwner() {
        if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device found");
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    }
    ~StreamOwner() {
        cudaStreamSynchronize(stream);
        cudaStreamDestroy(stream);
    }
    StreamOwner(const StreamOwner&) = delete;
    StreamOwner& operator=(const StreamOwner&) = delete;
};

// Layout of the int32 step buffer: the inputs of one forward chunk (one sequence) or one batched decode step
// (n_seq sequences of one token), read by the kernels from device memory so that a captured decode graph
// replays with new values. Offsets in int32 elements, for at most max_batch sequences.
struct StepLayout {
    int start_pos = 0;  // [n_seq] position of each sequence's first token in the step
    int seq_len = 0;    // [n_seq] tokens cached after the step
    int q_start = 0;    // [2] {0, T}: the chunk's rows for the varlen prefill kernel
    int tokens = 0;     // [T] token ids
    explicit StepLayout(int max_batch)
        : start_pos(0), seq_len(max_batch), q_start(2 * max_batch), tokens(2 * max_batch + 2) {}
};

struct CudaBackend::Impl {
    StreamOwner stream_owner;
    const Model& model;
    const ModelConfig& cfg;
    cudaStream_t stream = stream_owner.stream;
    std::map<int, cudaGraphExec_t> graphs;                   // decode step per batch size
    ProgrammaticLaunch graph_pdl = ProgrammaticLaunch::Off;  // the settings the graphs were captured with
    RowFusion graph_fusion = RowFusion::None;
    int sm_count = 0;
    std::unique_ptr<DeviceWeights> weights;
    std::unique_ptr<Linear> linear;
    std::unique_ptr<DeviceKvCache> kv;
    DType dt = DType::BF16;
    int max_chunk = 0, max_batch = 1, qkv_dim = 0;
    int seq_pages = 0;  // pages one sequence may hold (its block table's row length)
    StepLayout at{1};
    float attn_scale = 1.0f;

    // C = max(max_chunk, max_batch) rows.
    DeviceBuffer resid;           // [C][hidden] fp32 residual stream
    DeviceBuffer xn;              // [C][hidden] normed block input, weight dtype
    DeviceBuffer qkv;             // [C][q_dim + 2 kv_dim] fp32
    DeviceBuffer q;               // [C][n_heads][D] bf16, post-RoPE
    DeviceBuffer attn;            // [C][q_dim] attention output, weight dtype
    DeviceBuffer gate_up;         // [C][2 inter] fp32
    DeviceBuffer act;             // [C][inter] weight dtype
    DeviceBuffer logits;          // [kLogitsRows][vocab] fp32
    DeviceBuffer o_part;          // [B][n_heads][n_split(B)][D] fp32, sized for the largest B * n_split(B)
    DeviceBuffer lse_part;        // [B][n_heads][n_split(B)] fp32
    DeviceBuffer step;            // int32 step inputs (StepLayout)
    DeviceBuffer block_tables;    // [max_batch][seq_pages] int32: row b is the b-th sequence of a step
    DeviceBuffer next_token;      // [1] int32
    DeviceBuffer argmax_scratch;  // the LM-head GEMV's fused argmax (gemv.h): ticket and per-block winners
    DeviceBuffer counters;  // [max_batch][max(n_kv_heads * ceil(G / 16), n_heads)] int32: fused-merge tickets
    DeviceBuffer attended;  // [n_layers][max_batch][n_heads] int32: tokens each list attended (sparse decode)
    PinnedBuffer step_host, next_token_host, attended_host;
    std::unique_ptr<DeviceSelection> selection;  // the sparse policy's device selection; null: full
    std::vector<std::vector<int>> table_shadow;  // [max_batch] what each row of block_tables holds
    bool use_graphs = true;
    ForwardStats stats;

    Impl(const Model& m, const BackendOptions& opts);
    ~Impl();

    void tune_gemv();
    void check_tokens(std::span<const int> tokens) const;
    void check_room(const Sequence& seq, int T) const;
    void sync_block_table(int row, const Sequence& seq);
    void upload_step(int start, std::span<const int> tokens);
    void upload_batch(std::span<Sequence* const> seqs, std::span<const int> tokens);
    void run_layers(int T, int n_seq);
    void lm_head(int row0, int rows);
    GemvArgs normed_row(const void* w, const float* norm_weight, int n) const;
    void set_policy(const AttentionPolicy& policy);
    void destroy_graphs();
    void decode_attention_layer(int l, int n_seq);
    void decode_body(int n_seq);
    void decode(int n_seq);
    cudaGraphExec_t capture(const std::function<void()>& body);
    void copy_decode_stats(int n_seq);
    void read_decode_stats(int n_seq, double mean_tokens);
    void enqueue_decode(std::span<Sequence* const> seqs, std::span<const int> tokens);
    void finish_decode(std::span<Sequence* const> seqs);
    void prefill(int start, std::span<const int> tokens, LogitsMode mode, std::span<float> logits);
    int32_t* step_ptr(int i) const { return step.as<int32_t>() + i; }
    int groups_per_seq() const {
        return std::max(cfg.n_kv_heads * ((cfg.group_size() + 15) / 16), cfg.n_heads);
    }
};

CudaBackend::Impl::Impl(const Model& m, const BackendOptions& opts) : model(m), cfg(m.config) {
    if (cfg.head_dim % 16 != 0 || cfg.head_dim > 128)
        throw Error("--device cuda: head_dim {} is not supported (a multiple of 16 up to 128)", cfg.head_dim);
    if (opts.page_size != 16 && opts.page_size != 32 && opts.page_size != 64)
        throw Error("--device cuda: page size {} is not supported (16, 32 or 64)", opts.page_size);
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));

    weights = std::make_unique<DeviceWeights>(model);
    dt = weights->dtype();
    linear = std::make_unique<Linear>(stream);

    if (opts.max_batch < 1 || opts.max_batch > kMaxBatch)
        throw Error("--device cuda: max_batch {} is outside [1, {}]", opts.max_batch, kMaxBatch);
    max_batch = opts.max_batch;
    at = StepLayout(max_batch);
    const int context = opts.context > 0 ? opts.context : cfg.max_position_embeddings;
    if (opts.prefill_chunk < 0)
        throw Error("--device cuda: prefill chunk {} is negative", opts.prefill_chunk);
    max_chunk =
        std::max(1, std::min(opts.prefill_chunk > 0 ? opts.prefill_chunk : kCudaPrefillChunk, context));
    const size_t C = static_cast<size_t>(std::max(max_chunk, max_batch)),
                 H = static_cast<size_t>(cfg.hidden_size);
    const size_t I = static_cast<size_t>(cfg.intermediate_size), Qd = static_cast<size_t>(cfg.q_dim());
    const size_t w = dtype_size(dt);
    qkv_dim = cfg.q_dim() + 2 * cfg.kv_dim();
    attn_scale = 1.0f / std::sqrt(static_cast<float>(cfg.head_dim));
    size_t split_rows = 0;  // the largest B * n_split(B)
    for (int b = 1; b <= max_batch; ++b)
        split_rows =
            std::max(split_rows, static_cast<size_t>(b) *
                                     decode_attention_splits(b, cfg.n_heads, cfg.n_kv_heads, sm_count));
    resid = DeviceBuffer(C * H * 4, "residual stream");
    xn = DeviceBuffer(C * H * w, "normed activations");
    qkv = DeviceBuffer(C * static_cast<size_t>(qkv_dim) * 4, "q/k/v activations");
    q = DeviceBuffer(C * Qd * 2, "queries");
    attn = DeviceBuffer(C * Qd * w, "attention output");
    gate_up = DeviceBuffer(C * 2 * I * 4, "gate/up activations");
    act = DeviceBuffer(C * I * w, "MLP activations");
    logits = DeviceBuffer(static_cast<size_t>(kLogitsRows) * cfg.vocab_size * 4, "logits");
    o_part = DeviceBuffer(static_cast<size_t>(cfg.n_heads) * split_rows * cfg.head_dim * 4,
                          "decode attention splits");
    lse_part = DeviceBuffer(static_cast<size_t>(cfg.n_heads) * split_rows * 4, "decode attention splits");
    const size_t step_ints = static_cast<size_t>(at.tokens) + C;
    step = DeviceBuffer(step_ints * 4, "step inputs");
    next_token = DeviceBuffer(4, "next token");
    argmax_scratch = DeviceBuffer(gemv_argmax_scratch_bytes(), "argmax scratch");
    CUDA_CHECK(cudaMemset(argmax_scratch.get(), 0, argmax_scratch.bytes()));
    counters =
        DeviceBuffer(static_cast<size_t>(max_batch) * groups_per_seq() * 4, "decode attention counters");
    CUDA_CHECK(cudaMemset(counters.get(), 0, counters.bytes()));
    const size_t n_attended = static_cast<size_t>(cfg.n_layers) * max_batch * cfg.n_heads;
    attended = DeviceBuffer(n_attended * 4, "tokens attended per list");
    step_host = PinnedBuffer(step_ints * 4);
    next_token_host = PinnedBuffer(4);
    attended_host = PinnedBuffer(n_attended * 4);

    KvCacheShape shape;
    shape.n_layers = cfg.n_layers;
    shape.n_kv_heads = cfg.n_kv_heads;
    shape.head_dim = cfg.head_dim;
    shape.page_size = opts.page_size;
    seq_pages = (context + opts.page_size - 1) / opts.page_size;
    shape.num_pages = seq_pages * max_batch;
    const size_t per_page = DeviceKvCache::bytes_per_page(shape);
    const DeviceMemory mem = device_memory();
    const size_t usable = mem.free > kHeadroom ? mem.free - kHeadroom : 0;
    if (static_cast<size_t>(shape.num_pages) * per_page > usable) {
        const size_t fit = usable / per_page / static_cast<size_t>(max_batch);  // pages per sequence
        if (opts.context > 0 || fit == 0) {
            const std::string what = max_batch > 1
                                         ? fmt::format("{} sequences x {} tokens", max_batch, context)
                                         : fmt::format("{} tokens", context);
            throw Error(
                "out of device memory: a KV cache of {} needs {:.2f} GiB, {:.2f} GiB free after the "
                "{:.2f} GiB of weights; lower -c{}",
                what, gib(static_cast<size_t>(shape.num_pages) * per_page), gib(usable),
                gib(weights->bytes()), max_batch > 1 ? " or the batch" : "");
        }
        spdlog::warn("KV cache capped at {} tokens by free device memory ({:.2f} GiB; the model allows {})",
                     fit * opts.page_size, gib(usable), context);
        seq_pages = static_cast<int>(fit);
        shape.num_pages = seq_pages * max_batch;
    }
    kv = std::make_unique<DeviceKvCache>(shape);
    block_tables = DeviceBuffer(static_cast<size_t>(max_batch) * seq_pages * 4, "block tables");
    table_shadow.resize(static_cast<size_t>(max_batch));
    set_policy(opts.attention);
    tune_gemv();
}

// The decode attention from now on; the next decode step captures a new graph.
void CudaBackend::Impl::set_policy(const AttentionPolicy& policy) {
    std::unique_ptr<DeviceSelection> next;
    if (policy.kind != PolicyKind::Full) {
        if (policy.page_size != kv->shape().page_size)
            throw Error("--device cuda: the policy's page size {} differs from the cache's {}",
                        policy.page_size, kv->shape().page_size);
        next = std::make_unique<DeviceSelection>(policy, max_batch, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim,
                                                 seq_pages * kv->shape().page_size);
    }
    CUDA_CHECK(cudaStreamSynchronize(stream));  // the old selection's buffers may still be in use
    selection = std::move(next);
    destroy_graphs();
}

void CudaBackend::Impl::destroy_graphs() {
    for (auto& [b, g] : graphs) CUDA_CHECK(cudaGraphExecDestroy(g));
    graphs.clear();
}

// Picks the fastest GEMV variant for each decode projection shape on the real weights (milliseconds).
void CudaBackend::Impl::tune_gemv() {
    const int H = cfg.hidden_size, I = cfg.intermediate_size, Qd = cfg.q_dim(), V = cfg.vocab_size;
    DeviceBuffer x(static_cast<size_t>(std::max({H, I, Qd})) * dtype_size(dt), "GEMV tuning input");
    CUDA_CHECK(cudaMemsetAsync(x.get(), 0, x.bytes(), stream));
    std::vector<const void*> qkv_w, o_w, gate_up_w, down_w;
    for (const DeviceLayer& l : weights->layers()) {
        qkv_w.push_back(l.wqkv);
        o_w.push_back(l.wo);
        gate_up_w.push_back(l.w_gate_up);
        down_w.push_back(l.w_down);
    }
    float* y = logits.as<float>();  // [kLogitsRows][vocab]: room for any projection's output
    linear->tune_gemv(qkv_w, x.get(), dt, y, qkv_dim, H);
    linear->tune_gemv(o_w, x.get(), dt, y, H, Qd);
    linear->tune_gemv(gate_up_w, x.get(), dt, y, 2 * I, H);
    linear->tune_gemv(down_w, x.get(), dt, y, H, I);
    linear->tune_gemv({weights->lm_head()}, x.get(), dt, y, V, H);
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

CudaBackend::Impl::~Impl() {
    for (auto& [b, g] : graphs) cudaGraphExecDestroy(g);
}

void CudaBackend::Impl::check_tokens(std::span<const int> tokens) const {
    for (int t : tokens) {
        if (t < 0 || t >= cfg.vocab_size)
            throw Error("token id {} is out of range [0, {})", t, cfg.vocab_size);
    }
}

// One sequence holds at most seq_pages pages (its row of block_tables), as the CPU's -c caps each sequence.
void CudaBackend::Impl::check_room(const Sequence& seq, int T) const {
    const int cap = seq_pages * kv->shape().page_size;
    if (seq.n_tokens + T > cap)
        throw Error("KV cache full: {} tokens requested, capacity {} tokens (raise -c)", seq.n_tokens + T,
                    cap);
}

void CudaBackend::Impl::sync_block_table(int row, const Sequence& seq) {
    std::vector<int>& shadow = table_shadow[static_cast<size_t>(row)];
    size_t first = 0;
    while (first < seq.pages.size() && first < shadow.size() && seq.pages[first] == shadow[first]) ++first;
    if (first == seq.pages.size()) return;
    // From pageable memory: the copy is staged before cudaMemcpyAsync returns, so seq may change afterwards.
    CUDA_CHECK(cudaMemcpyAsync(block_tables.as<int32_t>() + static_cast<size_t>(row) * seq_pages + first,
                               seq.pages.data() + first, (seq.pages.size() - first) * 4,
                               cudaMemcpyHostToDevice, stream));
    shadow.assign(seq.pages.begin(), seq.pages.end());
}

// A prefill chunk of one sequence, in row 0.
void CudaBackend::Impl::upload_step(int start, std::span<const int> tokens) {
    const int T = static_cast<int>(tokens.size());
    int32_t* h = step_host.as<int32_t>();
    h[at.start_pos] = start;
    h[at.seq_len] = start + T;
    h[at.q_start] = 0;
    h[at.q_start + 1] = T;
    std::copy(tokens.begin(), tokens.end(), h + at.tokens);
    CUDA_CHECK(cudaMemcpyAsync(step.get(), h, (static_cast<size_t>(at.tokens) + T) * 4,
                               cudaMemcpyHostToDevice, stream));
}

// A decode step of sequences seqs[b] in rows b (block tables already synced).
void CudaBackend::Impl::upload_batch(std::span<Sequence* const> seqs, std::span<const int> tokens) {
    const int B = static_cast<int>(seqs.size());
    int32_t* h = step_host.as<int32_t>();
    for (int b = 0; b < B; ++b) {
        h[at.start_pos + b] = seqs[static_cast<size_t>(b)]->n_tokens;
        h[at.seq_len + b] = seqs[static_cast<size_t>(b)]->n_tokens + 1;
    }
    std::copy(tokens.begin(), tokens.end(), h + at.tokens);
    CUDA_CHECK(cudaMemcpyAsync(step.get(), h, (static_cast<size_t>(at.tokens) + B) * 4,
                               cudaMemcpyHostToDevice, stream));
}

// The layers for the T tokens of n_seq sequences described by the step buffer: a decode step when every
// sequence has one token (T == n_seq), else a prefill chunk of one sequence.
void CudaBackend::Impl::run_layers(int T, int n_seq) {
    const int H = cfg.hidden_size, I = cfg.intermediate_size, Qd = cfg.q_dim(), D = cfg.head_dim;
    const float eps = static_cast<float>(cfg.rms_norm_eps);
    const KvCacheShape& ks = kv->shape();
    const bool decode_step = T == n_seq;
    // One row: the GEMV kernel with the fusions row_fusion() names (bit-identical to the separate kernels;
    // each removes a launch per layer); several rows keep the separate kernels around cuBLAS.
    const bool one_row = T == 1 && gemv_supported(H, dt, true);
    const RowFusion fusion = row_fusion();
    const bool fuse_swiglu = one_row && fusion >= RowFusion::Swiglu;
    const bool norm_qkv = one_row && fusion >= RowFusion::NormQkv;
    const bool qkv_to_attention_input = one_row && fusion >= RowFusion::AttentionInput && !cfg.qk_norm;
    embed_tokens(step_ptr(at.tokens), weights->embed(), dt, resid.as<float>(), T, H, stream);
    for (int l = 0; l < cfg.n_layers; ++l) {
        const DeviceLayer& w = weights->layers()[static_cast<size_t>(l)];
        AttentionInputParams ai;
        ai.qkv = qkv.as<float>();
        ai.bias = w.bqkv;
        ai.q_norm = w.q_norm;
        ai.k_norm = w.k_norm;
        ai.inv_freq = weights->inv_freq();
        ai.rope_scaling = weights->rope_scaling();
        ai.norm_eps = eps;
        ai.start_pos = step_ptr(at.start_pos);
        ai.block_tables = block_tables.as<int32_t>();
        ai.table_stride = seq_pages;
        ai.q_out = q.as<uint16_t>();
        ai.k_pool = kv->k(l);
        ai.v_pool = kv->v(l);
        if (decode_step) {  // the metadata of each sequence's one new key is updated in the same kernel
            ai.kminmax = kv->kminmax(l);
            ai.ksum = kv->ksum(l);
            ai.count = kv->count(l);
        }
        ai.n_tokens = T;
        ai.n_seq = n_seq;
        ai.n_heads = cfg.n_heads;
        ai.n_kv_heads = cfg.n_kv_heads;
        ai.head_dim = D;
        ai.page_size = ks.page_size;
        if (norm_qkv) {  // RMSNorm inside the q/k/v GEMV, and maybe attention_input in its epilogue
            GemvArgs a = normed_row(w.wqkv, w.attn_norm, qkv_dim);
            a.y = qkv.as<float>();
            a.to_attention_input = qkv_to_attention_input;
            a.attention = ai;
            linear->row(a);
        } else {
            rmsnorm(resid.as<float>(), w.attn_norm, xn.get(), dt, T, H, eps, stream);
            (*linear)(xn.get(), w.wqkv, dt, qkv.as<float>(), T, qkv_dim, H, 0.0f);
        }
        if (!qkv_to_attention_input) attention_input(ai, stream);

        if (!decode_step) {
            KvMetadataParams km;
            km.k_pool = kv->k(l);
            km.kminmax = kv->kminmax(l);
            km.ksum = kv->ksum(l);
            km.count = kv->count(l);
            km.start_pos = step_ptr(at.start_pos);
            km.block_table = block_tables.as<int32_t>();
            km.n_tokens = T;
            km.n_kv_heads = cfg.n_kv_heads;
            km.head_dim = D;
            km.page_size = ks.page_size;
            kv_metadata_update(km, stream);
        }

        if (decode_step) {
            decode_attention_layer(l, n_seq);
        } else {
            PrefillAttentionParams pa;
            pa.q = q.as<uint16_t>();
            pa.k_pool = kv->k(l);
            pa.v_pool = kv->v(l);
            pa.block_tables = block_tables.as<int32_t>();
            pa.block_table_stride = seq_pages;
            pa.q_start = step_ptr(at.q_start);
            pa.pos_start = step_ptr(at.start_pos);
            pa.out = attn.get();
            pa.out_dtype = dt;
            pa.n_seq = 1;
            pa.n_heads = cfg.n_heads;
            pa.n_kv_heads = cfg.n_kv_heads;
            pa.head_dim = D;
            pa.page_size = ks.page_size;
            pa.max_q_len = T;
            pa.scale = attn_scale;
            pa.variant = D == 128 ? prefill_attention_variant() : 0;
            prefill_attention(pa, stream);
        }
        (*linear)(attn.get(), w.wo, dt, resid.as<float>(), T, H, Qd, 1.0f);

        rmsnorm(resid.as<float>(), w.mlp_norm, xn.get(), dt, T, H, eps, stream);
        if (fuse_swiglu) {  // SwiGLU in the gate/up GEMV's epilogue
            GemvArgs a;
            a.w = w.w_gate_up;
            a.x = xn.get();
            a.swiglu_out = act.get();
            a.n = 2 * I;
            a.k = H;
            a.dtype = dt;
            linear->row(a);
        } else {
            (*linear)(xn.get(), w.w_gate_up, dt, gate_up.as<float>(), T, 2 * I, H, 0.0f);
            swiglu(gate_up.as<float>(), act.get(), dt, T, I, stream);
        }
        (*linear)(act.get(), w.w_down, dt, resid.as<float>(), T, H, I, 1.0f);
    }
}

// Decode attention of layer l over the queries in `q` ([n_seq][n_heads][D]): the policy's selection and
// page lists in sparse layers, the block tables otherwise; output into `attn`.
void CudaBackend::Impl::decode_attention_layer(int l, int n_seq) {
    DecodeAttentionParams da;
    da.q = q.as<uint16_t>();
    da.k_pool = kv->k(l);
    da.v_pool = kv->v(l);
    da.page_lists = block_tables.as<int32_t>();  // the full policy: every head attends its block table
    da.list_seq_stride = seq_pages;
    da.seq_len = step_ptr(at.seq_len);
    da.o_part = o_part.as<float>();
    da.lse_part = lse_part.as<float>();
    da.n_seq = n_seq;
    da.n_heads = cfg.n_heads;
    da.n_kv_heads = cfg.n_kv_heads;
    da.head_dim = cfg.head_dim;
    da.page_size = kv->shape().page_size;
    da.n_split = decode_attention_splits(n_seq, cfg.n_heads, cfg.n_kv_heads, sm_count);
    da.scale = attn_scale;
    da.out = attn.get();
    da.out_dtype = dt;
    da.counters = counters.as<int32_t>();
    if (selection && selection->sparse_layer(l)) {
        LayerCache lc;
        lc.k_pool = kv->k(l);
        lc.kminmax = kv->kminmax(l);
        lc.ksum = kv->ksum(l);
        lc.count = kv->count(l);
        StepSequences ss;
        ss.block_tables = block_tables.as<int32_t>();
        ss.table_stride = seq_pages;
        ss.seq_len = step_ptr(at.seq_len);
        ss.n_seq = n_seq;
        selection->select(lc, q.as<uint16_t>(), ss,
                          attended.as<int32_t>() + static_cast<size_t>(l) * max_batch * cfg.n_heads, stream);
        selection->attach(da);
    }
    decode_attention(da, stream);
}

// Enqueues the copy of the tokens each list attended to the host (sparse policies; nothing for full), so
// that it rides on the sync the step ends with anyway.
// The selection writes [n_seq][n_lists] per layer at a stride of max_batch * n_heads; the host copy is
// packed: [n_layers][n_seq][n_lists].
void CudaBackend::Impl::copy_decode_stats(int n_seq) {
    if (!selection) return;
    const size_t row = static_cast<size_t>(n_seq) * selection->n_lists() * 4;
    CUDA_CHECK(cudaMemcpy2DAsync(attended_host.as<int32_t>(), row, attended.get(),
                                 static_cast<size_t>(max_batch) * cfg.n_heads * 4, row,
                                 static_cast<size_t>(cfg.n_layers), cudaMemcpyDeviceToHost, stream));
}

// After a decode step of n_seq sequences holding mean_tokens cached tokens on average, its
// copy_decode_stats() and a stream sync: the tokens attended per layer, mean over the sequences and lists.
void CudaBackend::Impl::read_decode_stats(int n_seq, double mean_tokens) {
    stats.attended_per_layer.assign(static_cast<size_t>(cfg.n_layers), mean_tokens);
    stats.recall.clear();
    if (selection) {
        const size_t lists = static_cast<size_t>(n_seq) * selection->n_lists();
        const int32_t* a = attended_host.as<int32_t>();
        for (int l = 0; l < cfg.n_layers; ++l) {
            if (!selection->sparse_layer(l)) continue;
            double sum = 0;
            for (size_t i = 0; i < lists; ++i) sum += a[static_cast<size_t>(l) * lists + i];
            stats.attended_per_layer[static_cast<size_t>(l)] = sum / static_cast<double>(lists);
        }
    }
    double sum = 0;
    for (double x : stats.attended_per_layer) sum += x;
    stats.attended_tokens = sum / cfg.n_layers;
}

// Logits of rows [row0, row0 + rows) of the residual stream into `logits` rows [0, rows).
void CudaBackend::Impl::lm_head(int row0, int rows) {
    const int H = cfg.hidden_size;
    rmsnorm(resid.as<float>() + static_cast<size_t>(row0) * H, weights->final_norm(), xn.get(), dt, rows, H,
            static_cast<float>(cfg.rms_norm_eps), stream);
    (*linear)(xn.get(), weights->lm_head(), dt, logits.as<float>(), rows, cfg.vocab_size, H, 0.0f);
}

// One row of W [n][hidden] times rmsnorm(resid row 0) * norm_weight, the norm computed inside the GEMV
// (gemv.h); the caller sets the output.
GemvArgs CudaBackend::Impl::normed_row(const void* w, const float* norm_weight, int n) const {
    GemvArgs a;
    a.w = w;
    a.norm_in = resid.as<float>();
    a.norm_weight = norm_weight;
    a.norm_eps = static_cast<float>(cfg.rms_norm_eps);
    a.n = n;
    a.k = cfg.hidden_size;
    a.dtype = dt;
    return a;
}

// Greedy tokens on the device for row 0 only (forward_greedy's one sequence). One sequence at
// RowFusion::LmHead: the final norm and the argmax inside the LM-head GEMV (bit-identical).
void CudaBackend::Impl::decode_body(int n_seq) {
    run_layers(n_seq, n_seq);
    const int H = cfg.hidden_size;
    if (n_seq == 1 && row_fusion() >= RowFusion::LmHead && gemv_supported(H, dt, true)) {
        GemvArgs a = normed_row(weights->lm_head(), weights->final_norm(), cfg.vocab_size);
        a.y = logits.as<float>();
        a.argmax_out = next_token.as<int32_t>();
        a.argmax_scratch = argmax_scratch.get();
        linear->row(a);
        return;
    }
    lm_head(0, n_seq);
    argmax_rows(logits.as<float>(), next_token.as<int32_t>(), 1, cfg.vocab_size, stream);
}

// One decode step of the n_seq sequences in the step buffer, as the CUDA graph for that batch size.
void CudaBackend::Impl::decode(int n_seq) {
    if (!use_graphs) {
        decode_body(n_seq);
        return;
    }
    if (graph_pdl != programmatic_launch() || graph_fusion != row_fusion()) destroy_graphs();
    graph_pdl = programmatic_launch();
    graph_fusion = row_fusion();
    const auto it = graphs.find(n_seq);
    if (it != graphs.end()) {
        CUDA_CHECK(cudaGraphLaunch(it->second, stream));
        return;
    }
    // The first step of a batch size runs eagerly (kernel attributes set, modules loaded outside any
    // capture), then the same launches are captured once for every later step.
    decode_body(n_seq);
    graphs[n_seq] = capture([this, n_seq] { decode_body(n_seq); });
}

// A decode step of seqs (one token each, row b = seqs[b]) up to its result: room and pages (all or nothing),
// block tables, step inputs, the step's graph and the copy of the tokens attended. The caller copies the
// result it wants, syncs the stream, then calls finish_decode.
void CudaBackend::Impl::enqueue_decode(std::span<Sequence* const> seqs, std::span<const int> tokens) {
    for (const Sequence* s : seqs) check_room(*s, 1);
    for (Sequence* s : seqs) kv->reserve(*s, s->n_tokens + 1);
    const int B = static_cast<int>(seqs.size());
    for (int b = 0; b < B; ++b) sync_block_table(b, *seqs[static_cast<size_t>(b)]);
    upload_batch(seqs, tokens);
    decode(B);
    copy_decode_stats(B);
}

// After the stream sync: the sequences advance by their token, and the step's stats are read.
void CudaBackend::Impl::finish_decode(std::span<Sequence* const> seqs) {
    double mean_tokens = 0;
    for (Sequence* s : seqs)
        mean_tokens += static_cast<double>(++s->n_tokens) / static_cast<double>(seqs.size());
    read_decode_stats(static_cast<int>(seqs.size()), mean_tokens);
}

// The launches of `body` on the stream as an instantiated graph (nothing runs).
cudaGraphExec_t CudaBackend::Impl::capture(const std::function<void()>& body) {
    cudaGraph_t g = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
        body();
    } catch (...) {
        cudaStreamEndCapture(stream, &g);
        if (g) cudaGraphDestroy(g);
        throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(stream, &g));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    CUDA_CHECK(err);
    return exec;
}

void CudaBackend::Impl::prefill(int start, std::span<const int> tokens, LogitsMode mode,
                                std::span<float> out) {
    const int T = static_cast<int>(tokens.size());
    const size_t V = static_cast<size_t>(cfg.vocab_size);
    for (int done = 0; done < T;) {
        const int c = std::min(max_chunk, T - done);
        upload_step(start + done, tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(c)));
        run_layers(c, 1);
        if (mode == LogitsMode::All) {
            for (int r = 0; r < c; r += kLogitsRows) {
                const int rows = std::min(kLogitsRows, c - r);
                lm_head(r, rows);
                CUDA_CHECK(cudaMemcpyAsync(out.data() + static_cast<size_t>(done + r) * V, logits.get(),
                                           rows * V * 4, cudaMemcpyDeviceToHost, stream));
            }
        } else if (done + c == T) {
            lm_head(c - 1, 1);
            CUDA_CHECK(cudaMemcpyAsync(out.data(), logits.get(), V * 4, cudaMemcpyDeviceToHost, stream));
        }
        CUDA_CHECK(cudaStreamSynchronize(stream));  // the pinned step buffer is refilled by the next chunk
        done += c;
    }
}

CudaBackend::CudaBackend(const Model& model, const BackendOptions& opts)
    : impl_(std::make_unique<Impl>(model, opts)) {}

CudaBackend::~CudaBackend() = default;

const Model& CudaBackend::model() const {
    return impl_->model;
}

int CudaBackend::context_capacity() const {
    return impl_->seq_pages * impl_->kv->shape().page_size;
}

int CudaBackend::prefill_chunk() const {
    return impl_->max_chunk;
}

void CudaBackend::forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                          std::span<float> logits) {
    Impl& m = *impl_;
    const int T = static_cast<int>(tokens.size());
    const size_t V = static_cast<size_t>(m.cfg.vocab_size);
    if (T == 0) throw Error("forward: no tokens given");
    const size_t need = mode == LogitsMode::All ? static_cast<size_t>(T) * V : V;
    if (logits.size() < need)
        throw Error("forward: the logits buffer holds {} floats, {} needed", logits.size(), need);
    m.check_tokens(tokens);
    if (T == 1) {
        Sequence* one[1] = {&seq};
        m.enqueue_decode(one, tokens);
        CUDA_CHECK(cudaMemcpyAsync(logits.data(), m.logits.get(), V * 4, cudaMemcpyDeviceToHost, m.stream));
        CUDA_CHECK(cudaStreamSynchronize(m.stream));
        m.finish_decode(one);
        return;
    }
    m.check_room(seq, T);
    const int start = seq.n_tokens;
    m.kv->reserve(seq, start + T);
    m.sync_block_table(0, seq);
    m.prefill(start, tokens, mode, logits);
    m.stats = ForwardStats{};
    m.stats.attended_tokens = start + (T + 1) / 2.0;  // mean of pos + 1 over the chunk (dense prefill)
    seq.n_tokens = start + T;
}

void CudaBackend::forward_batch(std::span<Sequence* const> seqs, std::span<const int> tokens,
                                std::span<float> logits) {
    Impl& m = *impl_;
    check_batch(m.cfg, m.max_batch, seqs, tokens, logits);
    m.enqueue_decode(seqs, tokens);
    CUDA_CHECK(cudaMemcpyAsync(logits.data(), m.logits.get(), seqs.size() * m.cfg.vocab_size * 4,
                               cudaMemcpyDeviceToHost, m.stream));
    CUDA_CHECK(cudaStreamSynchronize(m.stream));
    m.finish_decode(seqs);
}

int CudaBackend::forward_greedy(Sequence& seq, int token) {
    Impl& m = *impl_;
    const int tok[1] = {token};
    m.check_tokens(tok);
    Sequence* one[1] = {&seq};
    m.enqueue_decode(one, tok);
    CUDA_CHECK(cudaMemcpyAsync(m.next_token_host.as<int32_t>(), m.next_token.get(), 4, cudaMemcpyDeviceToHost,
                               m.stream));
    CUDA_CHECK(cudaStreamSynchronize(m.stream));
    m.finish_decode(one);
    return *m.next_token_host.as<int32_t>();
}

void CudaBackend::set_attention(const AttentionPolicy& policy, bool collect_recall) {
    if (collect_recall) throw Error("attention recall is measured by the CPU backend only (--device cpu)");
    validate_policy(policy);
    impl_->set_policy(policy);
}

AttentionTiming CudaBackend::time_decode_attention(const Sequence& seq, int reps) {
    Impl& m = *impl_;
    AttentionTiming t;
    if (reps == 0 && seq.n_tokens == 0) return t;
    if (seq.n_tokens < 1) throw Error("time_decode_attention: the sequence holds no tokens");
    // The step inputs of a decode step at seq's length (the queries stay those of the last decode step).
    m.sync_block_table(0, seq);
    int32_t* h = m.step_host.as<int32_t>();
    h[m.at.start_pos] = seq.n_tokens - 1;
    h[m.at.seq_len] = seq.n_tokens;
    CUDA_CHECK(cudaMemcpyAsync(m.step.get(), h, static_cast<size_t>(m.at.tokens) * 4, cudaMemcpyHostToDevice,
                               m.stream));
    const auto body = [&] {
        for (int l = 0; l < m.cfg.n_layers; ++l) m.decode_attention_layer(l, 1);
    };
    body();  // warm-up, outside the capture
    cudaGraphExec_t ge = m.capture(body);
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    CUDA_CHECK(cudaGraphLaunch(ge, m.stream));
    for (int r = 0; r < reps; ++r) {
        CUDA_CHECK(cudaEventRecord(e0, m.stream));
        CUDA_CHECK(cudaGraphLaunch(ge, m.stream));
        CUDA_CHECK(cudaEventRecord(e1, m.stream));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t.ms.push_back(ms);
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    CUDA_CHECK(cudaGraphExecDestroy(ge));
    m.copy_decode_stats(1);
    CUDA_CHECK(cudaStreamSynchronize(m.stream));
    m.read_decode_stats(1, seq.n_tokens);
    t.attended_tokens = m.stats.attended_tokens;
    return t;
}

void CudaBackend::release(Sequence& seq) {
    impl_->kv->release(seq);
}

ForwardStats CudaBackend::last_stats() const {
    return impl_->stats;
}

void CudaBackend::set_use_graphs(bool on) {
    impl_->use_graphs = on;
}

double CudaBackend::measure_bandwidth_gbs() {
    const size_t bytes = size_t{4} << 30;
    DeviceBuffer a(bytes, "bandwidth test source"), b(bytes, "bandwidth test destination");
    CUDA_CHECK(cudaMemsetAsync(a.get(), 0x5a, bytes, impl_->stream));
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<double> gbs;
    for (int i = 0; i < 12; ++i) {
        CUDA_CHECK(cudaEventRecord(e0, impl_->stream));
        CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, impl_->stream));
        CUDA_CHECK(cudaEventRecord(e1, impl_->stream));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 2) gbs.push_back(2.0 * static_cast<double>(bytes) / (ms * 1e6));
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    std::sort(gbs.begin(), gbs.end());
    return gbs[gbs.size() / 2];
}

size_t CudaBackend::weight_bytes() const {
    return impl_->weights->bytes();
}

size_t CudaBackend::kv_cache_bytes() const {
    return DeviceKvCache::bytes_per_page(impl_->kv->shape()) *
           static_cast<size_t>(impl_->kv->shape().num_pages);
}

}  // namespace dsa
