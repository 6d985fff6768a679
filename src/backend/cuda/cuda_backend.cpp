#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <functional>
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
#include "kernels/kv_metadata.h"
#include "kernels/launch.h"
#include "kernels/prefill_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "util/error.h"

namespace dsa {

using namespace cuda;

namespace {

constexpr int kMaxChunk = 4096;   // prefill tokens per pass: GEMMs of M = 4096 run near cuBLAS's peak
constexpr int kLogitsRows = 256;  // LM-head rows per pass when every position's logits are wanted
constexpr size_t kHeadroom = size_t{512} << 20;  // left free after the KV cache (driver, graphs, cuBLAS)

// Layout of the int32 step buffer: the inputs of one forward chunk, read by the kernels from device memory
// so that a captured decode graph replays with new values.
constexpr int kStartPos = 0;  // position of the chunk's first token
constexpr int kSeqLen = 1;    // tokens cached after the chunk
constexpr int kQStart = 2;    // {0, T}: the chunk's rows for the varlen prefill kernel
constexpr int kTokens = 4;    // [T] token ids

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

struct CudaBackend::Impl {
    StreamOwner stream_owner;
    const Model& model;
    const ModelConfig& cfg;
    cudaStream_t stream = stream_owner.stream;
    cudaGraphExec_t graph = nullptr;
    bool graph_pdl = false;  // the programmatic-launch setting the graph was captured with
    int sm_count = 0;
    std::unique_ptr<DeviceWeights> weights;
    std::unique_ptr<Linear> linear;
    std::unique_ptr<DeviceKvCache> kv;
    DType dt = DType::BF16;
    int max_chunk = 0, n_split = 1, qkv_dim = 0;
    float attn_scale = 1.0f;

    DeviceBuffer resid;        // [C][hidden] fp32 residual stream
    DeviceBuffer xn;           // [C][hidden] normed block input, weight dtype
    DeviceBuffer qkv;          // [C][q_dim + 2 kv_dim] fp32
    DeviceBuffer q;            // [C][n_heads][D] bf16, post-RoPE
    DeviceBuffer attn;         // [C][q_dim] attention output, weight dtype
    DeviceBuffer gate_up;      // [C][2 inter] fp32
    DeviceBuffer act;          // [C][inter] weight dtype
    DeviceBuffer logits;       // [kLogitsRows][vocab] fp32
    DeviceBuffer o_part;       // [n_heads][n_split][D] fp32
    DeviceBuffer lse_part;     // [n_heads][n_split] fp32
    DeviceBuffer step;         // int32 step inputs (layout above)
    DeviceBuffer block_table;  // [num_pages] int32
    DeviceBuffer next_token;   // [1] int32
    DeviceBuffer counters;     // [max(n_kv_heads * ceil(G / 16), n_heads)] int32: fused-merge tickets
    DeviceBuffer attended;     // [n_layers][n_heads] int32: tokens each list attended (sparse decode)
    PinnedBuffer step_host, next_token_host, attended_host;
    std::unique_ptr<DeviceSelection> selection;  // the sparse policy's device selection; null: full
    std::vector<int> block_table_shadow;         // what block_table holds
    bool use_graphs = true;
    ForwardStats stats;

    Impl(const Model& m, const BackendOptions& opts);
    ~Impl();

    void tune_gemv();
    void check_tokens(std::span<const int> tokens) const;
    void sync_block_table(const Sequence& seq);
    void upload_step(int start, std::span<const int> tokens);
    void run_layers(int T);
    void lm_head(int row0, int rows);
    void set_policy(const AttentionPolicy& policy);
    void decode_attention_layer(int l);
    void decode_body();
    void decode(int start, int token);
    cudaGraphExec_t capture(const std::function<void()>& body);
    void copy_decode_stats();
    void read_decode_stats(int n_tokens);
    void prefill(int start, std::span<const int> tokens, LogitsMode mode, std::span<float> logits);
    int32_t* step_ptr(int i) const { return step.as<int32_t>() + i; }
};

CudaBackend::Impl::Impl(const Model& m, const BackendOptions& opts) : model(m), cfg(m.config) {
    if (cfg.head_dim % 16 != 0 || cfg.head_dim > 128)
        throw Error("--device cuda: head_dim {} is not supported (a multiple of 16 up to 128)", cfg.head_dim);
    if (opts.page_size % 16 != 0)
        throw Error("--device cuda: page size {} is not supported (16, 32 or 64)", opts.page_size);
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));

    weights = std::make_unique<DeviceWeights>(model);
    dt = weights->dtype();
    linear = std::make_unique<Linear>(stream);

    const int context = opts.context > 0 ? opts.context : cfg.max_position_embeddings;
    max_chunk = std::max(1, std::min(kMaxChunk, context));
    const size_t C = static_cast<size_t>(max_chunk), H = static_cast<size_t>(cfg.hidden_size);
    const size_t I = static_cast<size_t>(cfg.intermediate_size), Qd = static_cast<size_t>(cfg.q_dim());
    const size_t w = dtype_size(dt);
    qkv_dim = cfg.q_dim() + 2 * cfg.kv_dim();
    attn_scale = 1.0f / std::sqrt(static_cast<float>(cfg.head_dim));
    n_split = decode_attention_splits(1, cfg.n_heads, cfg.n_kv_heads, sm_count);
    resid = DeviceBuffer(C * H * 4, "residual stream");
    xn = DeviceBuffer(C * H * w, "normed activations");
    qkv = DeviceBuffer(C * static_cast<size_t>(qkv_dim) * 4, "q/k/v activations");
    q = DeviceBuffer(C * Qd * 2, "queries");
    attn = DeviceBuffer(C * Qd * w, "attention output");
    gate_up = DeviceBuffer(C * 2 * I * 4, "gate/up activations");
    act = DeviceBuffer(C * I * w, "MLP activations");
    logits = DeviceBuffer(static_cast<size_t>(kLogitsRows) * cfg.vocab_size * 4, "logits");
    o_part = DeviceBuffer(static_cast<size_t>(cfg.n_heads) * n_split * cfg.head_dim * 4,
                          "decode attention splits");
    lse_part = DeviceBuffer(static_cast<size_t>(cfg.n_heads) * n_split * 4, "decode attention splits");
    step = DeviceBuffer((kTokens + C) * 4, "step inputs");
    next_token = DeviceBuffer(4, "next token");
    const size_t n_groups =
        std::max<size_t>(static_cast<size_t>(cfg.n_kv_heads) * ((cfg.group_size() + 15) / 16),
                         static_cast<size_t>(cfg.n_heads));
    counters = DeviceBuffer(n_groups * 4, "decode attention counters");
    CUDA_CHECK(cudaMemset(counters.get(), 0, counters.bytes()));
    const size_t n_attended = static_cast<size_t>(cfg.n_layers) * cfg.n_heads;
    attended = DeviceBuffer(n_attended * 4, "tokens attended per list");
    step_host = PinnedBuffer((kTokens + C) * 4);
    next_token_host = PinnedBuffer(4);
    attended_host = PinnedBuffer(n_attended * 4);

    KvCacheShape shape;
    shape.n_layers = cfg.n_layers;
    shape.n_kv_heads = cfg.n_kv_heads;
    shape.head_dim = cfg.head_dim;
    shape.page_size = opts.page_size;
    shape.num_pages = (context + opts.page_size - 1) / opts.page_size;
    const size_t per_page = DeviceKvCache::bytes_per_page(shape);
    const DeviceMemory mem = device_memory();
    const size_t usable = mem.free > kHeadroom ? mem.free - kHeadroom : 0;
    if (static_cast<size_t>(shape.num_pages) * per_page > usable) {
        const size_t fit = usable / per_page;
        if (opts.context > 0 || fit == 0) {
            throw Error(
                "out of device memory: a KV cache of {} tokens needs {:.2f} GiB, {:.2f} GiB free after the "
                "{:.2f} GiB of weights; lower -c",
                context, gib(static_cast<size_t>(shape.num_pages) * per_page), gib(usable),
                gib(weights->bytes()));
        }
        spdlog::warn("KV cache capped at {} tokens by free device memory ({:.2f} GiB; the model allows {})",
                     fit * opts.page_size, gib(usable), context);
        shape.num_pages = static_cast<int>(fit);
    }
    kv = std::make_unique<DeviceKvCache>(shape);
    block_table = DeviceBuffer(static_cast<size_t>(shape.num_pages) * 4, "block table");
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
        next = std::make_unique<DeviceSelection>(policy, 1, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim,
                                                 kv->capacity_tokens());
    }
    CUDA_CHECK(cudaStreamSynchronize(stream));  // the old selection's buffers may still be in use
    selection = std::move(next);
    if (graph) {
        CUDA_CHECK(cudaGraphExecDestroy(graph));
        graph = nullptr;
    }
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
    if (graph) cudaGraphExecDestroy(graph);
}

void CudaBackend::Impl::check_tokens(std::span<const int> tokens) const {
    for (int t : tokens) {
        if (t < 0 || t >= cfg.vocab_size)
            throw Error("token id {} is out of range [0, {})", t, cfg.vocab_size);
    }
}

void CudaBackend::Impl::sync_block_table(const Sequence& seq) {
    size_t first = 0;
    while (first < seq.pages.size() && first < block_table_shadow.size() &&
           seq.pages[first] == block_table_shadow[first])
        ++first;
    if (first == seq.pages.size()) return;
    // From pageable memory: the copy is staged before cudaMemcpyAsync returns, so seq may change afterwards.
    CUDA_CHECK(cudaMemcpyAsync(block_table.as<int32_t>() + first, seq.pages.data() + first,
                               (seq.pages.size() - first) * 4, cudaMemcpyHostToDevice, stream));
    block_table_shadow.assign(seq.pages.begin(), seq.pages.end());
}

void CudaBackend::Impl::upload_step(int start, std::span<const int> tokens) {
    const int T = static_cast<int>(tokens.size());
    int32_t* h = step_host.as<int32_t>();
    h[kStartPos] = start;
    h[kSeqLen] = start + T;
    h[kQStart] = 0;
    h[kQStart + 1] = T;
    std::copy(tokens.begin(), tokens.end(), h + kTokens);
    CUDA_CHECK(cudaMemcpyAsync(step.get(), h, (kTokens + static_cast<size_t>(T)) * 4, cudaMemcpyHostToDevice,
                               stream));
}

// The layers for the T tokens described by the step buffer; T == 1 uses the decode kernels.
void CudaBackend::Impl::run_layers(int T) {
    const int H = cfg.hidden_size, I = cfg.intermediate_size, Qd = cfg.q_dim(), D = cfg.head_dim;
    const float eps = static_cast<float>(cfg.rms_norm_eps);
    const KvCacheShape& ks = kv->shape();
    embed_tokens(step_ptr(kTokens), weights->embed(), dt, resid.as<float>(), T, H, stream);
    for (int l = 0; l < cfg.n_layers; ++l) {
        const DeviceLayer& w = weights->layers()[static_cast<size_t>(l)];
        rmsnorm(resid.as<float>(), w.attn_norm, xn.get(), dt, T, H, eps, stream);
        (*linear)(xn.get(), w.wqkv, dt, qkv.as<float>(), T, qkv_dim, H, 0.0f);

        AttentionInputParams ai;
        ai.qkv = qkv.as<float>();
        ai.bias = w.bqkv;
        ai.q_norm = w.q_norm;
        ai.k_norm = w.k_norm;
        ai.inv_freq = weights->inv_freq();
        ai.rope_scaling = weights->rope_scaling();
        ai.norm_eps = eps;
        ai.start_pos = step_ptr(kStartPos);
        ai.block_table = block_table.as<int32_t>();
        ai.q_out = q.as<uint16_t>();
        ai.k_pool = kv->k(l);
        ai.v_pool = kv->v(l);
        if (T == 1) {  // decode: the metadata of the one new key is updated in the same kernel
            ai.kminmax = kv->kminmax(l);
            ai.ksum = kv->ksum(l);
            ai.count = kv->count(l);
        }
        ai.n_tokens = T;
        ai.n_heads = cfg.n_heads;
        ai.n_kv_heads = cfg.n_kv_heads;
        ai.head_dim = D;
        ai.page_size = ks.page_size;
        attention_input(ai, stream);

        if (T > 1) {
            KvMetadataParams km;
            km.k_pool = kv->k(l);
            km.kminmax = kv->kminmax(l);
            km.ksum = kv->ksum(l);
            km.count = kv->count(l);
            km.start_pos = step_ptr(kStartPos);
            km.block_table = block_table.as<int32_t>();
            km.n_tokens = T;
            km.n_kv_heads = cfg.n_kv_heads;
            km.head_dim = D;
            km.page_size = ks.page_size;
            kv_metadata_update(km, stream);
        }

        if (T == 1) {
            decode_attention_layer(l);
        } else {
            PrefillAttentionParams pa;
            pa.q = q.as<uint16_t>();
            pa.k_pool = kv->k(l);
            pa.v_pool = kv->v(l);
            pa.block_tables = block_table.as<int32_t>();
            pa.block_table_stride = ks.num_pages;
            pa.q_start = step_ptr(kQStart);
            pa.pos_start = step_ptr(kStartPos);
            pa.out = attn.get();
            pa.out_dtype = dt;
            pa.n_seq = 1;
            pa.n_heads = cfg.n_heads;
            pa.n_kv_heads = cfg.n_kv_heads;
            pa.head_dim = D;
            pa.page_size = ks.page_size;
            pa.max_q_len = T;
            pa.scale = attn_scale;
            pa.variant =
                D == 128 ? 3 : 0;  // 128 query rows, 3 stages: 214 vs 180 TFLOP/s at 32K (docs/perf.md)
            prefill_attention(pa, stream);
        }
        (*linear)(attn.get(), w.wo, dt, resid.as<float>(), T, H, Qd, 1.0f);

        rmsnorm(resid.as<float>(), w.mlp_norm, xn.get(), dt, T, H, eps, stream);
        (*linear)(xn.get(), w.w_gate_up, dt, gate_up.as<float>(), T, 2 * I, H, 0.0f);
        swiglu(gate_up.as<float>(), act.get(), dt, T, I, stream);
        (*linear)(act.get(), w.w_down, dt, resid.as<float>(), T, H, I, 1.0f);
    }
}

// Decode attention of layer l over the queries in `q`: the policy's selection and page lists in sparse
// layers, the block table otherwise; output into `attn`.
void CudaBackend::Impl::decode_attention_layer(int l) {
    DecodeAttentionParams da;
    da.q = q.as<uint16_t>();
    da.k_pool = kv->k(l);
    da.v_pool = kv->v(l);
    da.page_lists = block_table.as<int32_t>();  // the full policy: every head attends the block table
    da.seq_len = step_ptr(kSeqLen);
    da.o_part = o_part.as<float>();
    da.lse_part = lse_part.as<float>();
    da.n_seq = 1;
    da.n_heads = cfg.n_heads;
    da.n_kv_heads = cfg.n_kv_heads;
    da.head_dim = cfg.head_dim;
    da.page_size = kv->shape().page_size;
    da.n_split = n_split;
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
        ss.block_tables = block_table.as<int32_t>();
        ss.table_stride = kv->shape().num_pages;
        ss.seq_len = step_ptr(kSeqLen);
        selection->select(lc, q.as<uint16_t>(), ss,
                          attended.as<int32_t>() + static_cast<size_t>(l) * cfg.n_heads, stream);
        selection->attach(da);
    }
    decode_attention(da, stream);
}

// Enqueues the copy of the tokens each list attended to the host (sparse policies; nothing for full), so
// that it rides on the sync the step ends with anyway.
void CudaBackend::Impl::copy_decode_stats() {
    if (!selection) return;
    const size_t lists = static_cast<size_t>(selection->n_lists());
    CUDA_CHECK(cudaMemcpy2DAsync(attended_host.as<int32_t>(), lists * 4, attended.get(),
                                 static_cast<size_t>(cfg.n_heads) * 4, lists * 4,
                                 static_cast<size_t>(cfg.n_layers), cudaMemcpyDeviceToHost, stream));
}

// After a decode step over n_tokens cached tokens, its copy_decode_stats() and a stream sync: the tokens
// attended per layer (mean over its lists).
void CudaBackend::Impl::read_decode_stats(int n_tokens) {
    stats.attended_per_layer.assign(static_cast<size_t>(cfg.n_layers), static_cast<double>(n_tokens));
    stats.recall.clear();
    if (selection) {
        const int lists = selection->n_lists();
        const int32_t* a = attended_host.as<int32_t>();
        for (int l = 0; l < cfg.n_layers; ++l) {
            if (!selection->sparse_layer(l)) continue;
            double sum = 0;
            for (int i = 0; i < lists; ++i) sum += a[static_cast<size_t>(l) * lists + i];
            stats.attended_per_layer[static_cast<size_t>(l)] = sum / lists;
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

void CudaBackend::Impl::decode_body() {
    run_layers(1);
    lm_head(0, 1);
    argmax_rows(logits.as<float>(), next_token.as<int32_t>(), 1, cfg.vocab_size, stream);
}

void CudaBackend::Impl::decode(int start, int token) {
    const int tok[1] = {token};
    upload_step(start, tok);
    if (!use_graphs) {
        decode_body();
        return;
    }
    if (graph && graph_pdl != programmatic_launch()) {
        CUDA_CHECK(cudaGraphExecDestroy(graph));
        graph = nullptr;
    }
    if (graph) {
        CUDA_CHECK(cudaGraphLaunch(graph, stream));
        return;
    }
    // The first step runs eagerly (kernel attributes set, modules loaded outside any capture), then the
    // same launches are captured once for every later step.
    decode_body();
    graph = capture([this] { decode_body(); });
    graph_pdl = programmatic_launch();
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
        run_layers(c);
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
    return impl_->kv->capacity_tokens();
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
    const int start = seq.n_tokens;
    m.kv->reserve(seq, start + T);
    m.sync_block_table(seq);
    if (T == 1) {
        m.decode(start, tokens[0]);
        m.copy_decode_stats();
        CUDA_CHECK(cudaMemcpyAsync(logits.data(), m.logits.get(), V * 4, cudaMemcpyDeviceToHost, m.stream));
        CUDA_CHECK(cudaStreamSynchronize(m.stream));
        m.read_decode_stats(start + 1);
    } else {
        m.prefill(start, tokens, mode, logits);
        m.stats = ForwardStats{};
        m.stats.attended_tokens = start + (T + 1) / 2.0;  // mean of pos + 1 over the chunk (dense prefill)
    }
    seq.n_tokens = start + T;
}

int CudaBackend::forward_greedy(Sequence& seq, int token) {
    Impl& m = *impl_;
    const int tok[1] = {token};
    m.check_tokens(tok);
    const int start = seq.n_tokens;
    m.kv->reserve(seq, start + 1);
    m.sync_block_table(seq);
    m.decode(start, token);
    m.copy_decode_stats();
    CUDA_CHECK(cudaMemcpyAsync(m.next_token_host.as<int32_t>(), m.next_token.get(), 4, cudaMemcpyDeviceToHost,
                               m.stream));
    CUDA_CHECK(cudaStreamSynchronize(m.stream));
    m.read_decode_stats(start + 1);
    seq.n_tokens = start + 1;
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
    m.sync_block_table(seq);
    int32_t* h = m.step_host.as<int32_t>();
    h[kStartPos] = seq.n_tokens - 1;
    h[kSeqLen] = seq.n_tokens;
    CUDA_CHECK(cudaMemcpyAsync(m.step.get(), h, 2 * 4, cudaMemcpyHostToDevice, m.stream));
    const auto body = [&] {
        for (int l = 0; l < m.cfg.n_layers; ++l) m.decode_attention_layer(l);
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
    m.copy_decode_stats();
    CUDA_CHECK(cudaStreamSynchronize(m.stream));
    m.read_decode_stats(seq.n_tokens);
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
