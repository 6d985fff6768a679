// Benchmarks of the CUDA backend on the device machine (a program, never a test):
//   cuda_bench copy                         device-to-device copy bandwidth (the memory ceiling)
//   cuda_bench attn  [--ctx 4096,32768,131072] [--attn full,quest,nsa] [--budget B] [--min-tiles 4,16]
//                    [--pages-in-order]
//       decode attention of all 32 layers of Llama-3.1-8B (32 query / 8 KV heads, d 128) over random bf16
//       K/V with their page metadata, per policy: the device selection in the sparse layers and the decode
//       kernel, replayed as one CUDA graph per step; ms per step, bytes read, TB/s and speedup over full
//   cuda_bench gemv                         batch-1 projections of Llama-3.1-8B: GEMV variants and cuBLAS
//   cuda_bench prefill-attn [--ctx 32768]   one layer of causal prefill attention (32/8 heads, d 128)
//   cuda_bench model [--shape models/shapes/llama-3.1-8b.json] [--prefill 32768] [--depth 4096] [--steps 128]
//                    [--prefill-variants 4,7]
//       random-weight model: prefill tok/s of one prompt, then greedy decode tok/s at a context depth,
//       with and without the decode CUDA graph, in every fusion and programmatic-launch mode;
//       --profile-steps N: the default mode only, N steps bracketed for `ncu --profile-from-start off`
// Times are medians of repetitions after warm-up, with device events (attn, copy) or the host clock around
// calls that end in a stream sync (model).
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <vector>

#include "attention/policy.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_selection.h"
#include "backend/cuda/linear.h"
#include "kernels/attention_merge.h"
#include "kernels/decode_attention.h"
#include "kernels/gemv.h"
#include "kernels/kv_metadata.h"
#include "kernels/launch.h"
#include "kernels/prefill_attention.h"
#include "model/random_weights.h"
#include "tools/cuda_bench_fill.h"
#include "util/dtype.h"
#include "util/paths.h"
#include "util/timer.h"

using namespace dsa;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Fills a device buffer of `bytes` with N(0, 1) bf16 draws (tools/cuda_bench_fill.h), then reads back up to
// 65536 elements spread over it and stops the benchmark unless their mean is within 0.05 of 0 and their
// standard deviation within 5% of 1 (a broken fill would otherwise be timed as if it were data).
void fill_random_bf16(void* dst, size_t bytes, uint32_t seed) {
    const size_t n = bytes / 2;
    bench::fill_normal_bf16(dst, n, seed);
    const size_t samples = std::min<size_t>(n, 65536), step = n / std::max<size_t>(samples, 1);
    if (samples < 1024) return;
    std::vector<uint16_t> v(samples);  // element s * step, for each s: one strided copy
    CUDA_CHECK(cudaMemcpy2D(v.data(), 2, dst, step * 2, 2, samples, cudaMemcpyDeviceToHost));
    double sum = 0, sq = 0;
    for (uint16_t b : v) {
        const double x = bf16_to_f32(b);
        sum += x;
        sq += x * x;
    }
    const double mean = sum / samples, sd = std::sqrt(sq / samples - mean * mean);
    if (std::abs(mean) > 0.05 || std::abs(sd - 1.0) > 0.05)
        throw Error("random fill check failed: mean {:.4f}, standard deviation {:.4f} over {} samples", mean,
                    sd, samples);
}

void bench_copy() {
    const size_t bytes = size_t{4} << 30;
    cuda::DeviceBuffer a(bytes, "copy source"), b(bytes, "copy destination");
    fill_random_bf16(a.get(), bytes, 1);
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<double> ms;
    for (int i = 0; i < 12; ++i) {
        CUDA_CHECK(cudaEventRecord(e0));
        CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaEventRecord(e1));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float t;
        CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
        if (i >= 2) ms.push_back(t);
    }
    const double m = median(ms);
    fmt::print("copy: {:.1f} GiB in {:.3f} ms: {:.2f} TB/s (read + write)\n", bytes / double(1 << 30), m,
               2.0 * bytes / m / 1e9);
}

// Median ms of `fn` (which enqueues on `s`) over `reps` event-timed runs after 2 warm-ups.
template <typename F>
double time_ms(cudaStream_t s, int reps, F fn) {
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<double> ms;
    for (int i = 0; i < reps + 2; ++i) {
        CUDA_CHECK(cudaEventRecord(e0, s));
        fn();
        CUDA_CHECK(cudaEventRecord(e1, s));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float t;
        CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
        if (i >= 2) ms.push_back(t);
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    return median(ms);
}

// Median ms of one replay of a CUDA graph of what `enqueue` launches on `s` (run once eagerly first, so
// kernel attributes are set outside the capture).
template <typename F>
double time_graph(cudaStream_t s, F enqueue) {
    enqueue();
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    enqueue();
    CUDA_CHECK(cudaStreamEndCapture(s, &g));
    CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
    const double m = time_ms(s, 30, [&] { CUDA_CHECK(cudaGraphLaunch(ge, s)); });
    CUDA_CHECK(cudaGraphExecDestroy(ge));
    CUDA_CHECK(cudaGraphDestroy(g));
    return m;
}

// One layer's random K/V and the page metadata of those keys (kv_metadata_update over the whole context).
struct BenchLayer {
    cuda::DeviceBuffer k, v, kminmax, ksum, count;
    cuda::LayerCache cache() const {
        return {k.as<uint16_t>(), kminmax.as<uint16_t>(), ksum.as<float>(), count.as<int32_t>()};
    }
};

std::vector<BenchLayer> make_bench_layers(int L, int Hkv, int D, int P, int ctx,
                                          const cuda::DeviceBuffer& table, const cuda::DeviceBuffer& zero) {
    const int pages = (ctx + P - 1) / P;
    const size_t pool = size_t(pages) * Hkv * P * D * 2;  // bytes per layer and tensor
    std::vector<BenchLayer> layers(L);
    for (int l = 0; l < L; ++l) {
        BenchLayer& b = layers[l];
        b.k = cuda::DeviceBuffer(pool, "bench K");
        b.v = cuda::DeviceBuffer(pool, "bench V");
        b.kminmax = cuda::DeviceBuffer(size_t(pages) * Hkv * 2 * D * 2, "bench kminmax");
        b.ksum = cuda::DeviceBuffer(size_t(pages) * Hkv * D * 4, "bench ksum");
        b.count = cuda::DeviceBuffer(size_t(pages) * Hkv * 4, "bench count");
        fill_random_bf16(b.k.get(), pool, 10 + l);
        fill_random_bf16(b.v.get(), pool, 100 + l);
        cuda::KvMetadataParams km;
        km.k_pool = b.k.as<uint16_t>();
        km.kminmax = b.kminmax.as<uint16_t>();
        km.ksum = b.ksum.as<float>();
        km.count = b.count.as<int32_t>();
        km.start_pos = zero.as<int32_t>();
        km.block_table = table.as<int32_t>();
        km.n_tokens = ctx;
        km.n_kv_heads = Hkv;
        km.head_dim = D;
        km.page_size = P;
        cuda::kv_metadata_update(km, nullptr);
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    return layers;
}

// Decode attention of all 32 layers of Llama-3.1-8B at each context, for each policy: the policy's device
// selection (dense_layers of the preset run full) and the decode kernel, replayed as one CUDA graph.
// min_tiles: DecodeAttentionParams::min_tiles_per_split values to time (each a row; empty: the default).
// in_order: the pages of the sequence in pool order (a fresh cache) instead of shuffled (one after reuse).
void bench_attention(const std::vector<int>& contexts, const std::vector<std::string>& policies, int budget,
                     std::vector<int> min_tiles, bool in_order) {
    if (min_tiles.empty()) min_tiles.push_back(cuda::DecodeAttentionParams{}.min_tiles_per_split);
    std::vector<std::pair<std::string, int>> runs;  // (policy, min_tiles_per_split), a table row each
    for (const std::string& name : policies)
        for (const int m : min_tiles) runs.emplace_back(name, m);
    const int L = 32, Hq = 32, Hkv = 8, D = 128;
    int sm_count = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
    const int n_split = cuda::decode_attention_splits(1, Hq, Hkv, sm_count);
    fmt::print(
        "decode attention, Llama-3.1-8B shapes ({} layers, {}/{} heads, d {}), {} splits, random K/V\n", L,
        Hq, Hkv, D, n_split);
    fmt::print(
        "| context | policy | ms / step (32 layers) | us / layer | tokens attended | bytes / step | TB/s | "
        "speedup |\n|---|---|---|---|---|---|---|---|\n");
    for (int ctx : contexts) {
        double full_ms = 0;
        int layers_p = 0;
        std::vector<BenchLayer> layers;
        cuda::DeviceBuffer d_table;
        for (const auto& [name, min_tiles_per_split] : runs) {
            AttentionPolicy policy = load_policy(name, preset_search_dirs());
            if (budget > 0 && (policy.kind == PolicyKind::Quest || policy.kind == PolicyKind::Oracle))
                policy.budget = budget;
            validate_policy(policy);
            const int P = policy.page_size, pages = (ctx + P - 1) / P;
            if (P != layers_p) {
                layers.clear();
                std::vector<int32_t> table(pages);
                std::iota(table.begin(), table.end(), 0);
                if (!in_order)  // fragmented, as after reuse
                    std::shuffle(table.begin(), table.end(), std::mt19937(5));
                d_table = cuda::DeviceBuffer(table.size() * 4, "table");
                CUDA_CHECK(cudaMemcpy(d_table.get(), table.data(), table.size() * 4, cudaMemcpyHostToDevice));
                const int zero_v = 0;
                cuda::DeviceBuffer zero(4, "zero");
                CUDA_CHECK(cudaMemcpy(zero.get(), &zero_v, 4, cudaMemcpyHostToDevice));
                layers = make_bench_layers(L, Hkv, D, P, ctx, d_table, zero);
                layers_p = P;
            }
            cuda::DeviceBuffer d_len(4, "len"), d_q(size_t(Hq) * D * 2, "q");
            cuda::DeviceBuffer d_o(size_t(Hq) * n_split * D * 4, "o"), d_lse(size_t(Hq) * n_split * 4, "lse");
            cuda::DeviceBuffer d_out(size_t(Hq) * D * 2, "out"), d_counters(size_t(Hq) * 4, "counters");
            cuda::DeviceBuffer d_attended(size_t(L) * Hq * 4, "attended");
            CUDA_CHECK(cudaMemset(d_counters.get(), 0, d_counters.bytes()));
            CUDA_CHECK(cudaMemset(d_attended.get(), 0, d_attended.bytes()));
            CUDA_CHECK(cudaMemcpy(d_len.get(), &ctx, 4, cudaMemcpyHostToDevice));
            fill_random_bf16(d_q.get(), d_q.bytes(), 7);
            std::unique_ptr<cuda::DeviceSelection> sel;
            if (policy.kind != PolicyKind::Full)
                sel = std::make_unique<cuda::DeviceSelection>(policy, 1, Hq, Hkv, D, ctx);
            cudaStream_t s;
            CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
            const cuda::StepSequences ss{d_table.as<int32_t>(), pages, d_len.as<int32_t>(), 1};
            auto step = [&] {
                for (int l = 0; l < L; ++l) {
                    cuda::DecodeAttentionParams p;
                    p.q = d_q.as<uint16_t>();
                    p.k_pool = layers[l].k.as<uint16_t>();
                    p.v_pool = layers[l].v.as<uint16_t>();
                    p.page_lists = d_table.as<int32_t>();
                    p.seq_len = d_len.as<int32_t>();
                    p.o_part = d_o.as<float>();
                    p.lse_part = d_lse.as<float>();
                    p.n_seq = 1;
                    p.n_heads = Hq;
                    p.n_kv_heads = Hkv;
                    p.head_dim = D;
                    p.page_size = P;
                    p.n_split = n_split;
                    p.min_tiles_per_split = min_tiles_per_split;
                    p.scale = 1.0f / std::sqrt(float(D));
                    p.out = d_out.get();  // merged in the same launch, as the backend runs it
                    p.out_dtype = DType::BF16;
                    p.counters = d_counters.as<int32_t>();
                    if (sel && sel->sparse_layer(l)) {
                        sel->select(layers[l].cache(), d_q.as<uint16_t>(), ss,
                                    d_attended.as<int32_t>() + size_t(l) * Hq, s);
                        sel->attach(p);
                    }
                    cuda::decode_attention(p, s);
                }
            };
            // Parts of the step, each over the sparse layers as its own graph: the selection's scores
            // alone, and the whole selection (scores, top-k and lists).
            auto selection_only = [&](bool with_pick) {
                for (int l = 0; l < L; ++l) {
                    if (!sel->sparse_layer(l)) continue;
                    sel->score(layers[l].cache(), d_q.as<uint16_t>(), ss, s);
                    if (with_pick) sel->pick(ss, d_attended.as<int32_t>() + size_t(l) * Hq, s);
                }
            };
            std::string parts;
            // The step under the default launch mode (the table's number), without PDL, and with PDL on
            // every launch (the selection's and the sparse lists' attention too).
            const double m = time_graph(s, step);
            const cuda::ProgrammaticLaunch mode = cuda::programmatic_launch();
            cuda::set_programmatic_launch(cuda::ProgrammaticLaunch::Off);
            const double m_off = time_graph(s, step);
            cuda::set_programmatic_launch(cuda::ProgrammaticLaunch::All);
            const double m_all = time_graph(s, step);
            cuda::set_programmatic_launch(mode);
            if (sel) {
                const double scores_ms = time_graph(s, [&] { selection_only(false); });
                const double select_ms = time_graph(s, [&] { selection_only(true); });
                parts = fmt::format(
                    "scores {:.3f}, + top-k/lists {:.3f}, step without PDL {:.3f}, PDL on all {:.3f}",
                    scores_ms, select_ms, m_off, m_all);
            } else {
                parts = fmt::format("step without PDL {:.3f}, PDL on all {:.3f}", m_off, m_all);
            }
            // Bytes: K/V of the attended tokens, plus what the selection reads in the sparse layers.
            std::vector<int32_t> att(size_t(L) * Hq);
            CUDA_CHECK(cudaMemcpy(att.data(), d_attended.get(), att.size() * 4, cudaMemcpyDeviceToHost));
            const int lists = sel ? sel->n_lists() : Hkv;
            const double kv_token = 2.0 * Hkv * D * 2;  // K+V of one token, one layer
            double bytes = 0, attended = 0;
            for (int l = 0; l < L; ++l) {
                double a = ctx;
                if (sel && sel->sparse_layer(l)) {
                    a = 0;
                    for (int i = 0; i < lists; ++i) a += att[size_t(l) * Hq + i];
                    a /= lists;
                    const double competing = pages - 1;
                    if (policy.kind == PolicyKind::Quest) bytes += competing * Hkv * 2 * D * 2;
                    if (policy.kind == PolicyKind::Nsa) bytes += competing * Hkv * (D * 4 + 4);
                    if (policy.kind == PolicyKind::Oracle) bytes += double(ctx) * Hkv * D * 2;
                }
                attended += a / L;
                bytes += a * kv_token * (lists == Hq ? double(Hq) / Hkv : 1.0);
            }
            if (policy.kind == PolicyKind::Full && full_ms == 0) full_ms = m;
            const std::string label =
                describe_policy(policy) +
                (min_tiles.size() > 1 ? fmt::format(" min_tiles={}", min_tiles_per_split) : std::string());
            fmt::print("| {} | {} | {:.3f} | {:.1f} | {:.0f} | {:.3f} GB | {:.2f} | {} |\n", ctx, label, m,
                       m * 1000 / L, attended, bytes / 1e9, bytes / m / 1e9,
                       full_ms > 0 ? fmt::format("{:.2f}x", full_ms / m) : std::string("-"));
            fmt::print("  ({} ms)\n", parts);
            CUDA_CHECK(cudaStreamDestroy(s));
        }
    }
}

void bench_gemv() {
    const std::vector<std::pair<int, int>> shapes = {
        {6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}, {128256, 4096}};
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cuda::Linear cublas(s);
    fmt::print(
        "batch-1 projections (bf16 weights, fp32 out), TB/s over weight bytes; each call reads another "
        "copy\n");
    fmt::print(
        "GEMV variants (rows per warp, loads in flight per row, blocks per SM): v0 (2,4,3), v1 (2,4,1), "
        "v2 (1,4,4), v3 (2,2,4); v4-v7: the same, persistent blocks\n");
    fmt::print(
        "| n x k | MB | v0 | v1 | v2 | v3 | v4 | v5 | v6 | v7 | cuBLAS |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (auto [n, k] : shapes) {
        const size_t bytes = size_t(n) * k * 2;
        const int copies = static_cast<int>(std::max<size_t>(1, (size_t{512} << 20) / bytes + 1));
        cuda::DeviceBuffer w(bytes * copies, "gemv weights"), x(size_t(k) * 2, "x"), y(size_t(n) * 4, "y");
        fill_random_bf16(w.get(), w.bytes(), 3);
        fill_random_bf16(x.get(), x.bytes(), 4);
        std::string row = fmt::format("| {} x {} | {:.0f} |", n, k, bytes / 1e6);
        for (int variant = 0; variant <= cuda::gemv_variants; ++variant) {
            const double m = time_ms(s, 10, [&] {
                for (int c = 0; c < copies; ++c) {
                    const void* wc = static_cast<const char*>(w.get()) + bytes * c;
                    if (variant < cuda::gemv_variants) {
                        cuda::GemvArgs a;
                        a.w = wc;
                        a.x = x.get();
                        a.y = y.as<float>();
                        a.n = n;
                        a.k = k;
                        cuda::gemv(a, s, variant);
                    } else {
                        cublas(x.get(), wc, DType::BF16, y.as<float>(), 2, n, k,
                               0.0f);  // m=2 keeps it in cuBLAS
                    }
                }
            });
            row += fmt::format(" {:.2f} |", bytes * double(copies) / m / 1e9);
        }
        fmt::print("{}\n", row);
    }
    CUDA_CHECK(cudaStreamDestroy(s));
}

void bench_prefill_attention(int ctx) {
    const int Hq = 32, Hkv = 8, D = 128, P = 16;
    const int pages = (ctx + P - 1) / P;
    const size_t pool = size_t(pages) * Hkv * P * D * 2;
    cuda::DeviceBuffer k(pool, "K"), v(pool, "V"), q(size_t(ctx) * Hq * D * 2, "q"),
        out(size_t(ctx) * Hq * D * 2, "out");
    fill_random_bf16(k.get(), pool, 1);
    fill_random_bf16(v.get(), pool, 2);
    fill_random_bf16(q.get(), q.bytes(), 3);
    std::vector<int32_t> table(pages);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), std::mt19937(5));
    const int32_t qs[2] = {0, ctx}, ps[1] = {0};
    cuda::DeviceBuffer d_table(table.size() * 4, "table"), d_qs(8, "qs"), d_ps(4, "ps");
    CUDA_CHECK(cudaMemcpy(d_table.get(), table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_qs.get(), qs, 8, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_ps.get(), ps, 4, cudaMemcpyHostToDevice));
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    const double flops = 4.0 * Hq * D * double(ctx) * (ctx + 1) / 2;  // causal: QK^T and PV
    fmt::print("prefill attention, one layer, {} tokens causal, 32/8 heads, d 128, P 16: {:.2f} TFLOP\n", ctx,
               flops / 1e12);
    fmt::print("| variant | ms | TFLOP/s |\n|---|---|---|\n");
    for (int variant = 0; variant < cuda::kPrefillAttentionVariants; ++variant) {
        cuda::PrefillAttentionParams p;
        p.q = q.as<uint16_t>();
        p.k_pool = k.as<uint16_t>();
        p.v_pool = v.as<uint16_t>();
        p.block_tables = d_table.as<int32_t>();
        p.block_table_stride = pages;
        p.q_start = d_qs.as<int32_t>();
        p.pos_start = d_ps.as<int32_t>();
        p.out = out.get();
        p.out_dtype = DType::BF16;
        p.n_seq = 1;
        p.n_heads = Hq;
        p.n_kv_heads = Hkv;
        p.head_dim = D;
        p.page_size = P;
        p.max_q_len = ctx;
        p.scale = 1.0f / std::sqrt(float(D));
        p.variant = variant;
        const double m = time_ms(s, 3, [&] { cuda::prefill_attention(p, s); });
        fmt::print("| {} | {:.2f} | {:.0f} |\n", variant, m, flops / m / 1e9);
    }
    CUDA_CHECK(cudaStreamDestroy(s));
}

// profile_steps > 0: the default mode only, its first profile_steps timed steps between cudaProfilerStart and
// cudaProfilerStop (for `ncu --profile-from-start off`: every kernel of those decode steps and nothing else).
void bench_model(const std::string& shape, int prefill, int prefill_chunk, std::vector<int> prefill_variants,
                 int depth, int steps, int profile_steps) {
    double t0 = now_ms();
    const Model model = make_random_model(shape, 0);
    fmt::print("{}: random weights built in {:.1f} s ({:.2f} GB)\n", shape, (now_ms() - t0) / 1000,
               model.weight_bytes() / 1e9);
    BackendOptions opts;
    opts.context = std::max(prefill, depth + steps + 64);
    opts.prefill_chunk = prefill_chunk;
    t0 = now_ms();
    CudaBackend gpu(model, opts);
    fmt::print("uploaded in {:.1f} s: weights {:.2f} GB on device, KV cache {:.2f} GB for {} tokens\n",
               (now_ms() - t0) / 1000, gpu.weight_bytes() / 1e9, gpu.kv_cache_bytes() / 1e9,
               gpu.context_capacity());
    const size_t V = static_cast<size_t>(model.config.vocab_size);
    std::vector<float> logits(V);
    std::mt19937 gen(3);
    auto random_tokens = [&](int n) {
        std::vector<int> t(n);
        for (int& x : t) x = static_cast<int>(gen() % V);
        return t;
    };
    {  // warm-up: cuBLAS heuristics, module loading
        Sequence s;
        gpu.forward(s, random_tokens(std::min(prefill, 4096)), LogitsMode::Last, logits);
        gpu.release(s);
    }
    const int default_variant = cuda::prefill_attention_variant();
    if (prefill_variants.empty()) prefill_variants = {default_variant};
    for (int variant : prefill_variants) {
        cuda::set_prefill_attention_variant(variant);
        std::vector<double> pre;
        for (int r = 0; r < 3; ++r) {
            Sequence s;
            const auto toks = random_tokens(prefill);
            const double a = now_ms();
            gpu.forward(s, toks, LogitsMode::Last, logits);
            pre.push_back(now_ms() - a);
            gpu.release(s);
        }
        const double pm = median(pre);
        fmt::print("prefill {} tokens (chunks of {}, attention variant {}): {:.1f} ms, {:.0f} tok/s\n",
                   prefill, prefill_chunk > 0 ? prefill_chunk : kCudaPrefillChunk, variant, pm, prefill / pm * 1000);
    }
    cuda::set_prefill_attention_variant(default_variant);

    using cuda::ProgrammaticLaunch;
    const auto mode_name = [](ProgrammaticLaunch m) {
        return m == ProgrammaticLaunch::All    ? "PDL"
               : m == ProgrammaticLaunch::Gemv ? "PDL GEMVs only"
                                               : "no PDL";
    };
    const ProgrammaticLaunch default_mode = cuda::programmatic_launch();
    const cuda::RowFusion default_fusion = cuda::row_fusion();
    const auto fusion_name = [](cuda::RowFusion f) {
        return f == cuda::RowFusion::None             ? "no fusion"
               : f == cuda::RowFusion::Swiglu         ? "SwiGLU fused"
               : f == cuda::RowFusion::NormQkv        ? "SwiGLU + q/k/v norm fused"
               : f == cuda::RowFusion::AttentionInput ? "SwiGLU + q/k/v norm + attention input fused"
                                                      : "+ LM-head norm and argmax fused";
    };
    struct Mode {
        bool graphs;
        ProgrammaticLaunch pdl;
        cuda::RowFusion fusion;
    };
    std::vector<Mode> modes;
    if (profile_steps > 0) modes.push_back({true, default_mode, default_fusion});
    // Each mode twice, interleaved, so drift between them shows.
    for (int round = 0; round < (profile_steps > 0 ? 0 : 2); ++round) {
        for (auto f : {cuda::RowFusion::None, cuda::RowFusion::Swiglu, cuda::RowFusion::NormQkv,
                       cuda::RowFusion::AttentionInput, cuda::RowFusion::LmHead})
            for (auto pdl : {ProgrammaticLaunch::Off, ProgrammaticLaunch::Gemv})
                modes.push_back({true, pdl, f});
        modes.push_back({true, ProgrammaticLaunch::All, default_fusion});
        if (round == 0) modes.push_back({false, ProgrammaticLaunch::All, default_fusion});
    }
    for (const Mode& mode : modes) {
        gpu.set_use_graphs(mode.graphs);
        cuda::set_programmatic_launch(mode.pdl);
        cuda::set_row_fusion(mode.fusion);
        Sequence s;
        gpu.forward(s, random_tokens(depth), LogitsMode::Last, logits);
        int tok = 1;
        for (int i = 0; i < 8; ++i) tok = gpu.forward_greedy(s, tok);
        std::vector<double> ms;
        for (int i = 0; i < steps; ++i) {
            if (i == 0 && profile_steps > 0) CUDA_CHECK(cudaProfilerStart());
            const double a = now_ms();
            tok = gpu.forward_greedy(s, tok);
            ms.push_back(now_ms() - a);
            if (i + 1 == profile_steps) CUDA_CHECK(cudaProfilerStop());
        }
        const double m = median(ms);
        const double weight_bytes =
            double(gpu.weight_bytes()) -
            double(V) * model.config.hidden_size * 2 * (model.config.tie_word_embeddings ? 0 : 1);
        fmt::print(
            "decode at depth {} ({}, {}, {}): {:.3f} ms/token, {:.1f} tok/s; weights read {:.2f} GB -> "
            "{:.2f} "
            "TB/s\n",
            depth, mode.graphs ? "CUDA graph" : "eager launches", mode_name(mode.pdl),
            fusion_name(mode.fusion), m, 1000 / m, weight_bytes / 1e9, weight_bytes / m / 1e9);
        gpu.release(s);
    }
    cuda::set_row_fusion(default_fusion);
    cuda::set_programmatic_launch(default_mode);
}

std::vector<std::string> split_names(const std::string& s) {
    std::vector<std::string> v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) v.push_back(item);
    return v;
}

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> v;
    for (const std::string& item : split_names(s)) v.push_back(std::stoi(item));
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"dsa CUDA benchmarks"};
    app.require_subcommand(1);
    auto* copy = app.add_subcommand("copy", "device-to-device copy bandwidth");
    auto* attn = app.add_subcommand("attn", "decode attention, 32 layers of Llama-3.1-8B shapes");
    std::string ctx = "4096,32768,131072", attn_list = "full,quest,nsa", min_tiles;
    int budget = 0;
    attn->add_option("--ctx", ctx, "contexts, comma-separated");
    attn->add_option("--attn", attn_list, "policies (presets in configs/), comma-separated; full first");
    attn->add_option("--budget", budget, "quest/oracle token budget (0: the preset's)");
    attn->add_option("--min-tiles", min_tiles, "decode kernel min_tiles_per_split values, comma-separated");
    bool in_order = false;
    attn->add_flag("--pages-in-order", in_order, "pages in pool order (a fresh cache), not shuffled");
    auto* model = app.add_subcommand("model", "random-weight model: prefill and decode throughput");
    std::string shape = "models/shapes/llama-3.1-8b.json";
    int prefill = 32768, depth = 4096, steps = 128;
    model->add_option("--shape", shape);
    model->add_option("--prefill", prefill);
    model->add_option("--depth", depth);
    model->add_option("--steps", steps);
    int prefill_chunk = 0;
    model->add_option("--prefill-chunk", prefill_chunk,
                      "prompt tokens per prefill pass (0: the backend's kCudaPrefillChunk, 8192)");
    std::string prefill_variants;
    model->add_option(
        "--prefill-variants", prefill_variants,
        "time the prefill with each of these prefill-attention variants (default: the backend's)");
    int profile_steps = 0;
    model->add_option("--profile-steps", profile_steps,
                      "default mode only; its first N steps between cudaProfilerStart/Stop (ncu)");
    cuda::RowFusion fusion = cuda::row_fusion();
    const std::map<std::string, cuda::RowFusion> fusions{{"none", cuda::RowFusion::None},
                                                         {"swiglu", cuda::RowFusion::Swiglu},
                                                         {"norm-qkv", cuda::RowFusion::NormQkv},
                                                         {"attention-input", cuda::RowFusion::AttentionInput},
                                                         {"lm-head", cuda::RowFusion::LmHead}};
    model->add_option("--fusion", fusion, "the default mode's GEMV fusions")
        ->transform(CLI::CheckedTransformer(fusions, CLI::ignore_case));
    auto* gemv_cmd = app.add_subcommand("gemv", "batch-1 projections: GEMV variants and cuBLAS");
    auto* pattn = app.add_subcommand("prefill-attn", "one layer of causal prefill attention");
    int pctx = 32768;
    pattn->add_option("--ctx", pctx);
    CLI11_PARSE(app, argc, argv);
    try {
        if (*copy) bench_copy();
        if (*attn)
            bench_attention(parse_list(ctx), split_names(attn_list), budget,
                            min_tiles.empty() ? std::vector<int>{} : parse_list(min_tiles), in_order);
        if (*model) {
            cuda::set_row_fusion(fusion);
            bench_model(shape, prefill, prefill_chunk,
                        prefill_variants.empty() ? std::vector<int>{} : parse_list(prefill_variants), depth,
                        steps, profile_steps);
        }
        if (*gemv_cmd) bench_gemv();
        if (*pattn) bench_prefill_attention(pctx);
    } catch (const std::exception& e) {
        fmt::print(stderr, "cuda_bench: error: {}\n", e.what());
        return 1;
    }
    return 0;
}
