#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "attention/cpu_attention.h"
#include "backend/cpu/cpu_ops.h"
#include "util/error.h"

namespace dsa {

namespace {

// The CPU default when -c is not given: 8192 tokens keep the fp32 cache of an 8B model (32 layers x 8 kv
// heads x 128 dims x K+V x 4 bytes = 256 KiB per token) at 2 GiB.
constexpr int kDefaultCpuContext = 8192;

// Query tokens per prefill attention task: 16 tokens x G heads share every K/V page read (a 16 KiB page
// of K+V for D = 128 stays in L1 meanwhile), instead of each token streaming the whole prefix.
constexpr int kQueryBlock = 16;

// MemAvailable from /proc/meminfo in bytes; 0 when it cannot be read (then no check is made).
size_t mem_available_bytes() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    size_t kib = 0;
    std::string unit;
    while (f >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024;
    return 0;
}

std::vector<float> to_f32(const TensorView& t) {
    std::vector<float> out;
    if (!t.valid()) return out;
    out.resize(static_cast<size_t>(t.numel()));
    convert_to_f32(t.data, t.dtype, 0, out.size(), out.data());
    return out;
}

const float* ptr_or_null(const std::vector<float>& v) {
    return v.empty() ? nullptr : v.data();
}

template <typename T>
void grow(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
}

}  // namespace

CpuBackend::CpuBackend(const Model& model, const BackendOptions& opts) : model_(model), cfg_(model.config) {
    if (opts.context < 0) throw Error("-c must be a number of tokens >= 0, got {}", opts.context);
    if (opts.threads < 0) throw Error("--threads must be >= 0 (0: all cores), got {}", opts.threads);
    const int model_ctx =
        cfg_.max_position_embeddings > 0 ? cfg_.max_position_embeddings : kDefaultCpuContext;
    context_ = opts.context > 0 ? opts.context : std::min(model_ctx, kDefaultCpuContext);
    if (opts.max_batch < 1) throw Error("max_batch must be >= 1, got {}", opts.max_batch);
    max_batch_ = opts.max_batch;

    const int P = opts.page_size;
    if (P != 16 && P != 32 && P != 64) throw Error("page size must be 16, 32 or 64 tokens, got {}", P);
    KvCacheShape shape;
    shape.n_layers = cfg_.n_layers;
    shape.n_kv_heads = cfg_.n_kv_heads;
    shape.head_dim = cfg_.head_dim;
    shape.page_size = P;
    shape.num_pages = (context_ + P - 1) / P * max_batch_;
    const size_t need = PagedKvCache::total_bytes(shape);
    const size_t avail = mem_available_bytes();
    if (avail > 0 && need > avail) {
        constexpr double GiB = 1024.0 * 1024.0 * 1024.0;
        throw Error(
            "-c {} x {} sequences: the fp32 KV cache needs {:.2f} GiB but only {:.2f} GiB of memory is "
            "available; lower -c",
            context_, max_batch_, need / GiB, avail / GiB);
    }
    cache_ = std::make_unique<PagedKvCache>(shape);
    set_attention(opts.attention, opts.collect_recall);

    if (opts.threads > 0) {
        own_pool_ = std::make_unique<ThreadPool>(opts.threads);
        pool_ = own_pool_.get();
    } else {
        pool_ = &ThreadPool::global();
    }

    rope_ = make_rope_table(cfg_);
    const ModelWeights& w = model_.weights;
    layers_.resize(cfg_.n_layers);
    for (int l = 0; l < cfg_.n_layers; ++l) {
        const LayerWeights& lw = w.layers[l];
        SmallWeights& s = layers_[l];
        s.attn_norm = to_f32(lw.attn_norm);
        s.mlp_norm = to_f32(lw.mlp_norm);
        if (cfg_.attention_bias) {
            s.bq = to_f32(lw.bq);
            s.bk = to_f32(lw.bk);
            s.bv = to_f32(lw.bv);
        }
        if (cfg_.qk_norm) {
            s.q_norm = to_f32(lw.q_norm);
            s.k_norm = to_f32(lw.k_norm);
        }
    }
    final_norm_ = to_f32(w.final_norm);
}

void CpuBackend::set_attention(const AttentionPolicy& policy, bool collect_recall) {
    const int P = cache_->shape().page_size;
    AttentionPolicy p = policy;
    // Full attention does not depend on the page size: it follows the cache's.
    if (p.kind == PolicyKind::Full) p.page_size = P;
    validate_policy(p);
    if (p.page_size != P) {
        throw Error("attention policy page size {} differs from the KV cache's {}", p.page_size, P);
    }
    policy_ = p;
    collect_recall_ = collect_recall;
}

void CpuBackend::copy_sequence(const Sequence& src, Sequence& dst) {
    if (&src == &dst) return;
    cache_->release(dst);
    cache_->reserve(dst, src.n_tokens);
    const KvCacheShape& sh = cache_->shape();
    const size_t D = static_cast<size_t>(sh.head_dim);
    const PagedKvCache& from_cache = *cache_;
    for (int l = 0; l < sh.n_layers; ++l) {
        for (size_t j = 0; j < dst.pages.size(); ++j) {
            const int from = src.pages[j], to = dst.pages[j];
            // Only the written slots: the rest of a partial page was never initialised.
            const size_t slots = static_cast<size_t>(
                std::min(sh.page_size, src.n_tokens - static_cast<int>(j) * sh.page_size));
            for (int h = 0; h < sh.n_kv_heads; ++h) {
                std::copy_n(from_cache.k(l, from, h), slots * D, cache_->k(l, to, h));  // [slots][D]
                std::copy_n(from_cache.v(l, from, h), slots * D, cache_->v(l, to, h));  // [slots][D]
                const PageMetaView a = from_cache.meta(l, from, h);
                const PageMetaView b = cache_->meta(l, to, h);
                std::copy_n(a.kmin, D, b.kmin);
                std::copy_n(a.kmax, D, b.kmax);
                std::copy_n(a.ksum, D, b.ksum);
                *b.count = *a.count;
            }
        }
    }
    dst.n_tokens = src.n_tokens;
}

void CpuBackend::ensure_scratch(int T) {
    if (T <= max_T_) return;
    max_T_ = T;
    const size_t t = static_cast<size_t>(T);
    grow(x_, t * cfg_.hidden_size);
    grow(xn_, t * cfg_.hidden_size);
    grow(proj_, t * cfg_.hidden_size);
    grow(q_, t * cfg_.q_dim());
    grow(att_, t * cfg_.q_dim());
    grow(k_, t * cfg_.kv_dim());
    grow(v_, t * cfg_.kv_dim());
    grow(gate_, t * cfg_.intermediate_size);
    grow(up_, t * cfg_.intermediate_size);
    grow(cos_, t * (cfg_.head_dim / 2));
    grow(sin_, t * (cfg_.head_dim / 2));
}

// cos/sin of every (row, frequency) of the pass. The angle is the fp32 product pos * inv_freq, as HF
// computes it, so long positions round the same way.
void CpuBackend::rope_tables(std::span<const RowChunk> chunks) {
    const int half = cfg_.head_dim / 2;
    for (const RowChunk& c : chunks) {
        for (int t = 0; t < c.T; ++t) {
            const size_t row = static_cast<size_t>(c.row0 + t) * half;
            for (int i = 0; i < half; ++i) {
                const float angle = static_cast<float>(c.pos0 + t) * rope_.inv_freq[i];
                cos_[row + i] =
                    static_cast<float>(std::cos(static_cast<double>(angle))) * rope_.attention_scaling;
                sin_[row + i] =
                    static_cast<float>(std::sin(static_cast<double>(angle))) * rope_.attention_scaling;
            }
        }
    }
}

void CpuBackend::run_layers(std::span<const RowChunk> chunks, int rows) {
    rope_tables(chunks);
    layer_attended_.assign(static_cast<size_t>(cfg_.n_layers), 0.0);
    layer_recall_.assign(static_cast<size_t>(cfg_.n_layers), 1.0);
    for (int l = 0; l < cfg_.n_layers; ++l) {
        attention_block(l, chunks, rows);
        mlp_block(l, rows);
    }
}

void CpuBackend::attention_block(int layer, std::span<const RowChunk> chunks, int rows) {
    const LayerWeights& w = model_.weights.layers[layer];
    const SmallWeights& s = layers_[layer];
    const int H = cfg_.hidden_size, D = cfg_.head_dim, Hq = cfg_.n_heads, Hkv = cfg_.n_kv_heads;
    const float eps = static_cast<float>(cfg_.rms_norm_eps);

    rmsnorm(x_.data(), rows, H, s.attn_norm.data(), eps, xn_.data());
    matmul(*pool_, xn_.data(), rows, w.wq, ptr_or_null(s.bq), q_.data());
    matmul(*pool_, xn_.data(), rows, w.wk, ptr_or_null(s.bk), k_.data());
    matmul(*pool_, xn_.data(), rows, w.wv, ptr_or_null(s.bv), v_.data());
    if (cfg_.qk_norm) {  // Qwen3: per-head RMSNorm over head_dim, before RoPE
        rmsnorm(q_.data(), rows * Hq, D, s.q_norm.data(), eps, q_.data());
        rmsnorm(k_.data(), rows * Hkv, D, s.k_norm.data(), eps, k_.data());
    }
    apply_rope(q_.data(), rows, Hq, D, cos_.data(), sin_.data());
    apply_rope(k_.data(), rows, Hkv, D, cos_.data(), sin_.data());

    // Each chunk's K/V go into the cache first; causality comes from each query's page list.
    const size_t kv_dim = cfg_.kv_dim();
    for (const RowChunk& c : chunks) {
        for (int t = 0; t < c.T; ++t) {
            const size_t row = static_cast<size_t>(c.row0 + t) * kv_dim;
            cache_->append(layer, *c.seq, c.pos0 + t, k_.data() + row, v_.data() + row);
        }
    }

    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    RowAttention mean{0, 0};
    for (const RowChunk& c : chunks) {
        RowAttention a{static_cast<double>(c.pos0 + 1), 1.0};  // dense: every cached token
        if (c.T == 1 && policy_.kind != PolicyKind::Full) {
            a = sparse_decode_attention(layer, c, scale);
        } else {
            causal_attention(layer, c, scale);
        }
        mean.attended += a.attended / static_cast<double>(chunks.size());
        mean.recall += a.recall / static_cast<double>(chunks.size());
    }
    layer_attended_[static_cast<size_t>(layer)] = mean.attended;
    layer_recall_[static_cast<size_t>(layer)] = mean.recall;

    matmul(*pool_, att_.data(), rows, w.wo, nullptr, proj_.data());
    const size_t n = static_cast<size_t>(rows) * H;
    for (size_t i = 0; i < n; ++i) x_[i] += proj_[i];
}

void CpuBackend::causal_attention(int layer, const RowChunk& c, float scale) {
    const int D = cfg_.head_dim, Hkv = cfg_.n_kv_heads, G = cfg_.group_size();
    const int pos0 = c.pos0, T = c.T;
    // Tasks: (block of kQueryBlock consecutive query tokens, kv head). A block reads each page once for
    // its kQueryBlock x G query rows; full-attention decode (T = 1) is one task per kv head.
    const size_t q_dim = cfg_.q_dim();
    const int n_blocks = (T + kQueryBlock - 1) / kQueryBlock;
    const size_t n_tasks = static_cast<size_t>(n_blocks) * Hkv;
    const size_t task_work = static_cast<size_t>(pos0 + T) * D * G * std::min(T, kQueryBlock);
    const size_t grain = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(1, task_work));
    pool_->parallel_for(n_tasks, grain, [&](size_t b, size_t e) {
        for (size_t task = b; task < e; ++task) {
            const int t0 = static_cast<int>(task / Hkv) * kQueryBlock;
            const int kvh = static_cast<int>(task % Hkv);
            CausalBlock blk;
            blk.layer = layer;
            blk.kv_head = kvh;
            blk.pages = c.seq->pages;
            blk.first_pos = pos0 + t0;
            blk.n_queries = std::min(kQueryBlock, T - t0);
            blk.stride = q_dim;
            blk.scale = scale;
            const size_t off =
                (c.row0 + t0) * q_dim + static_cast<size_t>(kvh) * G * D;  // the group's G heads
            attend_causal(*cache_, blk, q_.data() + off, G, att_.data() + off);
        }
    });
}

CpuBackend::RowAttention CpuBackend::sparse_decode_attention(int layer, const RowChunk& rc, float scale) {
    const int D = cfg_.head_dim, Hkv = cfg_.n_kv_heads, G = cfg_.group_size();
    const Sequence& seq = *rc.seq;
    const int n_tokens = rc.pos0 + 1;
    const size_t row = static_cast<size_t>(rc.row0) * cfg_.q_dim();  // the chunk's one query row
    const int P = cache_->shape().page_size;
    const size_t n_pages = static_cast<size_t>((n_tokens + P - 1) / P);
    const std::span<const int> table(seq.pages.data(), n_pages);
    const PagedKvCache& cache = *cache_;
    std::vector<double> attended(static_cast<size_t>(Hkv)), recall(static_cast<size_t>(Hkv));  // [Hkv]
    pool_->parallel_for(static_cast<size_t>(Hkv), 1, [&](size_t b, size_t e) {
        std::vector<PageMeta> meta(n_pages);      // [n_pages]
        std::vector<const float*> keys(n_pages);  // [n_pages] -> [P][D], for the oracle
        for (size_t kvh = b; kvh < e; ++kvh) {
            const int h = static_cast<int>(kvh);
            for (size_t j = 0; j < n_pages; ++j) {
                const PageMetaView m = cache.meta(layer, table[j], h);
                meta[j] = {m.kmin, m.kmax, m.ksum, *m.count};
                keys[j] = cache.k(layer, table[j], h);
            }
            const float* q = q_.data() + row + kvh * static_cast<size_t>(G) * D;  // [G][D] the group's heads
            float* out = att_.data() + row + kvh * static_cast<size_t>(G) * D;    // [G][D]
            SelectInput in;
            in.q = q;
            in.group_size = G;
            in.head_dim = D;
            in.page_size = P;
            in.n_tokens = n_tokens;
            in.meta = meta;
            in.keys = keys;
            const GroupSelection sel = select_tokens(policy_, layer, in);
            if (sel.dense) {
                // The rows and arithmetic of full-attention decode (attend_causal of one token), so a
                // dense step gives full attention's bits.
                PageListAttention a;
                a.layer = layer;
                a.kv_head = h;
                a.pages = table;
                a.last_page_tokens = (n_tokens - 1) % P + 1;
                a.scale = scale;
                attend_pages(cache, a, q, G, out);
                attended[kvh] = n_tokens;
                recall[kvh] = 1.0;
                continue;
            }
            // Shared selection: one call for the G heads; per-head: one call per head (same arithmetic).
            const int calls = static_cast<int>(sel.heads.size()), heads_per_call = G / calls;
            double tokens = 0, rec = 0;
            for (int c = 0; c < calls; ++c) {
                const HeadSelection& hs = sel.heads[static_cast<size_t>(c)];
                SpanAttention a;
                a.layer = layer;
                a.kv_head = h;
                a.block_table = table;
                a.spans = hs.spans;
                a.scale = scale;
                const size_t off = static_cast<size_t>(c) * heads_per_call * D;
                attend_spans(cache, a, q + off, heads_per_call, out + off);
                tokens += static_cast<double>(hs.tokens()) * heads_per_call;
                if (!collect_recall_) continue;
                for (int g = 0; g < heads_per_call; ++g) {
                    rec += attention_recall(cache, layer, h, table, n_tokens, hs.spans, scale,
                                            q + off + static_cast<size_t>(g) * D);
                }
            }
            attended[kvh] = tokens / G;
            recall[kvh] = rec / G;
        }
    });
    double a_sum = 0, r_sum = 0;
    for (int h = 0; h < Hkv; ++h) {
        a_sum += attended[static_cast<size_t>(h)];
        r_sum += recall[static_cast<size_t>(h)];
    }
    return {a_sum / Hkv, r_sum / Hkv};
}

void CpuBackend::mlp_block(int layer, int rows) {
    const int T = rows;
    const LayerWeights& w = model_.weights.layers[layer];
    const SmallWeights& s = layers_[layer];
    const int H = cfg_.hidden_size;
    rmsnorm(x_.data(), T, H, s.mlp_norm.data(), static_cast<float>(cfg_.rms_norm_eps), xn_.data());
    matmul(*pool_, xn_.data(), T, w.w_gate, nullptr, gate_.data());
    matmul(*pool_, xn_.data(), T, w.w_up, nullptr, up_.data());
    silu_mul(gate_.data(), up_.data(), static_cast<size_t>(T) * cfg_.intermediate_size);
    matmul(*pool_, gate_.data(), T, w.w_down, nullptr, proj_.data());
    const size_t n = static_cast<size_t>(T) * H;
    for (size_t i = 0; i < n; ++i) x_[i] += proj_[i];
}

void CpuBackend::check_room(const Sequence& seq, int T) const {
    if (seq.n_tokens + T > context_)
        throw Error("KV cache full: {} tokens requested, capacity {} tokens (raise -c)", seq.n_tokens + T,
                    context_);
}

// x_ row r = the embedding of tokens[r] (ids already checked).
void CpuBackend::embed_rows(std::span<const int> tokens) {
    const TensorView& embed = model_.weights.embed;
    const size_t H = static_cast<size_t>(cfg_.hidden_size);
    for (size_t r = 0; r < tokens.size(); ++r)
        convert_to_f32(embed.data, embed.dtype, static_cast<size_t>(tokens[r]) * H, H, x_.data() + r * H);
}

// out [rows][vocab]: the logits of residual rows [first, first + rows).
void CpuBackend::lm_head(int first, int rows, float* out) {
    const int H = cfg_.hidden_size;
    rmsnorm(x_.data() + static_cast<size_t>(first) * H, rows, H, final_norm_.data(),
            static_cast<float>(cfg_.rms_norm_eps), xn_.data());
    matmul(*pool_, xn_.data(), rows, model_.weights.lm_head, nullptr, out);
}

// stats_ of a decode step from the per-layer means run_layers left.
void CpuBackend::set_decode_stats() {
    double sum = 0;
    for (double a : layer_attended_) sum += a;
    stats_.attended_tokens = sum / cfg_.n_layers;
    stats_.attended_per_layer = layer_attended_;
    stats_.recall.clear();
    if (collect_recall_) stats_.recall = layer_recall_;
}

void CpuBackend::forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                         std::span<float> logits) {
    const int T = static_cast<int>(tokens.size());
    const int V = cfg_.vocab_size;
    if (T == 0) throw Error("forward: a chunk needs at least one token");
    const size_t want = mode == LogitsMode::All ? static_cast<size_t>(T) * V : static_cast<size_t>(V);
    if (logits.size() != want)
        throw Error("forward: logits buffer holds {} floats, expected {}", logits.size(), want);
    for (int tok : tokens)
        if (tok < 0 || tok >= V) throw Error("token id {} is outside the vocabulary [0, {})", tok, V);
    check_room(seq, T);
    const int pos0 = seq.n_tokens;
    cache_->reserve(seq, pos0 + T);
    ensure_scratch(T);

    embed_rows(tokens);
    const RowChunk chunk[1] = {{&seq, pos0, 0, T}};
    run_layers(chunk, T);
    seq.n_tokens = pos0 + T;

    const int first = mode == LogitsMode::All ? 0 : T - 1;
    lm_head(first, T - first, logits.data());
    if (T == 1) {
        set_decode_stats();
        return;
    }
    stats_.recall.clear();
    stats_.attended_per_layer.clear();
    stats_.attended_tokens = pos0 + (T + 1) / 2.0;  // mean of pos + 1 over the chunk (dense prefill)
}

void CpuBackend::forward_batch(std::span<Sequence* const> seqs, std::span<const int> tokens,
                               std::span<float> logits) {
    check_batch(cfg_, max_batch_, seqs, tokens, logits);
    const int B = static_cast<int>(seqs.size());
    for (const Sequence* s : seqs) check_room(*s, 1);
    for (Sequence* s : seqs) cache_->reserve(*s, s->n_tokens + 1);  // all or nothing advances
    ensure_scratch(B);

    embed_rows(tokens);
    batch_chunks_.resize(static_cast<size_t>(B));  // capacity kept: no allocation after the first step
    for (int b = 0; b < B; ++b) {
        Sequence* s = seqs[static_cast<size_t>(b)];
        batch_chunks_[static_cast<size_t>(b)] = {s, s->n_tokens, b, 1};
    }
    run_layers(batch_chunks_, B);
    for (Sequence* s : seqs) ++s->n_tokens;
    lm_head(0, B, logits.data());
    set_decode_stats();
}

}  // namespace dsa
