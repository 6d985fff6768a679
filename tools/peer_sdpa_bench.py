#!/usr/bin/env python3
"""Peer numbers for `dsa bench`, on the same shapes and GPU: PyTorch SDPA decode attention over every layer
(full, and a gather + SDPA sparse step at a token budget) and Hugging Face transformers generate tok/s.

Rows use dsa bench's JSON field names (docs/bench.md) with "peer": true, so tools/plot_bench.py and the README
table merge them with `dsa bench -o json` output:

  python3 tools/peer_sdpa_bench.py --shape models/shapes/llama-3.1-8b.json \
      --depth 4096,32768,131072 --budget 2048 --generate-depth 0,4096,32768 -o peer.json

Attention ("attn @ dD" rows, like dsa bench --kernels): one decode step of every layer over D cached tokens,
bf16 K/V [n_kv_heads][D][head_dim] per layer (separate buffers, so no layer reads another's from L2). The
query heads are given to SDPA both ways, packed as G query rows of their KV head (decode GQA is exactly
that) and as Hq heads with enable_gqa; each backend's faster layout is reported. The L calls are captured in one CUDA graph and replayed (no launch gaps, as dsa's decode graph);
times are CUDA events, one warm-up, `--reps` replays. Bytes: K+V of the attended tokens (+ the gathered copy
written and read again for the sparse step). Each SDPA backend (cudnn, flash, efficient) is tried and
reported when it runs; `speedup` is over the fastest full-attention backend at that depth.

Generate ("tg<N> @ dD" rows): the model built from the shape with random bf16 weights on the GPU, its
default attention (sdpa) and dynamic cache; greedy generate of N tokens after a D-token prompt (1 token for
D = 0), one warm-up call, then `--gen-reps` calls; a stopping criterion timestamps every token after a device
sync, so decode t/s = (N - 1) / (time from the first token to the last), without the prefill.

Bandwidth: a 4 GiB device-to-device copy, GB/s counting bytes read + written, median of 10 after warm-up.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SDPA_BACKENDS = ("cudnn", "flash", "efficient")


def log(msg):
    print(f"peer_sdpa_bench: {msg}", file=sys.stderr, flush=True)


def parse_list(text, flag, minimum):
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        sys.exit(f"peer_sdpa_bench: error: {flag} '{text}': expected comma-separated integers")
    if any(v < minimum for v in values):
        sys.exit(f"peer_sdpa_bench: error: {flag} '{text}': values must be >= {minimum}")
    return values


def copy_bandwidth_gbs():
    n = 4 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda").fill_(1)
    dst = torch.empty_like(src)
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for i in range(12):
        e0.record()
        dst.copy_(src)
        e1.record()
        e1.synchronize()
        if i >= 2:
            ms.append(e0.elapsed_time(e1))
    del src, dst
    torch.cuda.empty_cache()
    return 2 * n / (statistics.median(ms) * 1e6)


def sdpa_context(name):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }[name]
    return sdpa_kernel([backend])


def time_graph(step, reps):
    """Captures step() in a CUDA graph, replays it once to warm up, then `reps` timed replays (ms each)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        step()  # allocations and kernel choice happen outside the capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    graph.replay()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for _ in range(reps):
        e0.record()
        graph.replay()
        e1.record()
        e1.synchronize()
        ms.append(e0.elapsed_time(e1))
    return ms


def attention_rows(cfg, depths, budget, reps, base):
    L, Hq, Hkv = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // Hq
    G = Hq // Hkv
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for depth in depths:
        n = depth + 1  # the new token included, as dsa bench --kernels
        ks = [torch.randn(1, Hkv, n, D, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(L)]
        vs = [torch.randn(1, Hkv, n, D, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(L)]
        q_packed = torch.randn(1, Hkv, G, D, device="cuda", dtype=torch.bfloat16, generator=gen)
        q_heads = q_packed.reshape(1, Hq, 1, D)
        kv_bytes = 2.0 * L * Hkv * n * D * 2
        full = []  # (backend, layout, ms) of every SDPA backend that runs
        for name in SDPA_BACKENDS:
            best = None
            for layout in ("packed", "enable_gqa"):
                def step():
                    for k, v in zip(ks, vs):
                        if layout == "packed":
                            F.scaled_dot_product_attention(q_packed, k, v)
                        else:
                            F.scaled_dot_product_attention(q_heads, k, v, enable_gqa=True)

                try:
                    with sdpa_context(name):
                        ms = time_graph(step, reps)
                except RuntimeError as e:
                    log(f"attn @ d{depth}: sdpa {name} {layout} does not run here ({str(e).splitlines()[0][:100]})")
                    continue
                log(f"attn @ d{depth}: sdpa {name} {layout} {statistics.mean(ms):.3f} ms")
                if best is None or statistics.mean(ms) < statistics.mean(best[2]):
                    best = (name, layout, ms)
            if best:
                full.append(best)
        base_ms = min(statistics.mean(ms) for _, _, ms in full) if full else None
        for name, layout, ms in full:
            rows.append(attn_row(base, f"torch-sdpa-{name}", "full", None, depth, ms, kv_bytes, 0.0, base_ms,
                                 policy=f"full ({layout})"))
        if budget and budget < n:
            # Quest-like step without the selection: B token positions per KV head (sorted, random), gathered
            # into a contiguous [Hkv][B][D] copy, then SDPA over it.
            idx = torch.stack([torch.randperm(n, device="cuda", generator=gen)[:budget].sort().values
                               for _ in range(Hkv)]).view(1, Hkv, budget, 1).expand(1, Hkv, budget, D)

            def sparse_step():
                for k, v in zip(ks, vs):
                    F.scaled_dot_product_attention(q_packed, k.gather(2, idx), v.gather(2, idx))

            ms = time_graph(sparse_step, reps)
            # read B tokens' K/V, write the copy, read it again
            sparse_bytes = 3 * 2.0 * L * Hkv * budget * D * 2
            rows.append(attn_row(base, "torch-gather-sdpa", "gather", budget, depth, ms, sparse_bytes, 0.0, base_ms,
                                 policy=f"gather B={budget} + sdpa (packed)"))
            log(f"attn @ d{depth}: gather+sdpa B={budget} {statistics.mean(ms):.3f} ms")
        del ks, vs
        torch.cuda.empty_cache()
    return rows


def attn_row(base, backend, attn, budget, depth, ms, kv_bytes, meta_bytes, full_ms, policy):
    mean = statistics.mean(ms)
    gbps = (kv_bytes + meta_bytes) / (mean * 1e6)
    row = dict(base)
    row.update(backend=backend, attn=attn, policy=policy,
               budget=budget, batch=1, kind="attn", test=f"attn @ d{depth}", n_depth=depth, reps=len(ms),
               avg_ms=mean, stddev_ms=statistics.stdev(ms) if len(ms) > 1 else 0.0, attended_tokens=None,
               bytes_per_step=kv_bytes + meta_bytes, kv_bytes=kv_bytes, meta_bytes=meta_bytes, gbps=gbps,
               bw_pct=100 * gbps / base["bw_gbps"], speedup=(full_ms / mean) if full_ms else None,
               samples_ms=ms)
    return row


def weight_bytes(model):
    """Every parameter but the embedding table (a decode step reads one row of it), bf16."""
    embed = model.get_input_embeddings().weight
    tied = model.get_output_embeddings().weight.data_ptr() == embed.data_ptr()
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return total - (0 if tied else embed.numel() * embed.element_size())


def generate_rows(cfg_dict, depths, n_gen, reps, base):
    import transformers

    cfg = transformers.AutoConfig.for_model(**cfg_dict)
    t0 = time.time()
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        except TypeError:
            model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.eval()
    log(f"transformers {transformers.__version__}: random {cfg_dict.get('model_type')} built in "
        f"{time.time() - t0:.1f} s, attention {model.config._attn_implementation}")
    L, Hkv = cfg_dict["num_hidden_layers"], cfg_dict["num_key_value_heads"]
    D = cfg_dict.get("head_dim") or cfg_dict["hidden_size"] // cfg_dict["num_attention_heads"]
    w_bytes = weight_bytes(model)
    n_params = sum(p.numel() for p in model.parameters())
    all_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    kv_token = 2.0 * L * Hkv * D * 2
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(1)

    class StepClock(transformers.StoppingCriteria):
        """Timestamps every generated token (after a device sync), so decode time excludes the prefill."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores, **kwargs):
            torch.cuda.synchronize()
            self.times.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def decode_ms(ids, n):
        """ms per decode step of one greedy generate of n tokens (the steps between the first and last token)."""
        clock = StepClock()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0,
                                 stopping_criteria=transformers.StoppingCriteriaList([clock]))
        if out.shape[1] != ids.shape[1] + n or len(clock.times) < 2:
            sys.exit(f"peer_sdpa_bench: error: generate made {out.shape[1] - ids.shape[1]} tokens, "
                     f"{len(clock.times)} timestamps, for {n}")
        return (clock.times[-1] - clock.times[0]) * 1e3 / (len(clock.times) - 1)

    for depth in depths:
        ids = torch.randint(0, cfg_dict["vocab_size"], (1, max(depth, 1)), device="cuda", generator=gen)
        decode_ms(ids, n_gen)  # warm-up: the same call, so every shape it meets has been seen
        step_ms = [decode_ms(ids, n_gen) for _ in range(reps)]
        steps = n_gen - 1
        ms = [m * steps for m in step_ms]  # one repetition = the N - 1 timed steps
        ts = [1e3 * steps / m for m in ms]
        mean_ms = statistics.mean(ms)
        # Same bytes model as dsa bench: weights + one embedding row + K/V read + the new token's K/V written.
        # The N - 1 timed steps see prompt + 1 .. prompt + N - 1 tokens: prompt + N / 2 on average.
        attended = ids.shape[1] + n_gen / 2
        bytes_per_token = w_bytes + cfg_dict["hidden_size"] * 2 + (attended + 1) * kv_token
        gbps = bytes_per_token / (mean_ms / steps * 1e6)
        row = dict(base)
        row.update(params=n_params, model_bytes=all_bytes, backend="hf-transformers", attn="full", policy="full (transformers sdpa)", budget=None, batch=1,
                   kind="tg", test=f"tg{n_gen} @ d{depth}" if depth else f"tg{n_gen}", n_prompt=0, n_gen=n_gen,
                   n_depth=depth, reps=reps, avg_ns=mean_ms * 1e6, stddev_ns=(statistics.stdev(ms) if reps > 1 else 0) * 1e6,
                   avg_ts=statistics.mean(ts), stddev_ts=statistics.stdev(ts) if reps > 1 else 0.0,
                   ms_per_token=mean_ms / steps, attended_tokens=attended, bytes_per_token=bytes_per_token,
                   weight_bytes=w_bytes + cfg_dict["hidden_size"] * 2, kv_bytes=(attended + 1) * kv_token,
                   meta_bytes=0.0, gbps=gbps, bw_pct=100 * gbps / base["bw_gbps"],
                   samples_ns=[m * 1e6 for m in ms], samples_ts=ts)
        rows.append(row)
        log(f"tg{n_gen} @ d{depth}: {row['avg_ts']:.1f} t/s")
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", required=True, help="config.json of the architecture (models/shapes/NAME.json)")
    ap.add_argument("--depth", default="4096,32768,131072", help="attention depths, comma-separated")
    ap.add_argument("--budget", type=int, default=2048, help="tokens of the gather+SDPA sparse step (0: none)")
    ap.add_argument("--reps", type=int, default=20, help="timed graph replays per attention row")
    ap.add_argument("--generate-depth", default="0,4096,32768",
                    help="prompt depths of the transformers generate rows ('none': no generate rows)")
    ap.add_argument("--n-gen", type=int, default=64, help="tokens generated per generate repetition")
    ap.add_argument("--gen-reps", type=int, default=3, help="repetitions of each generate row")
    ap.add_argument("-o", "--output", default="-", help="JSON file (default: stdout)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("peer_sdpa_bench: error: no CUDA device (the peers are GPU programs)")
    if args.reps < 1 or args.gen_reps < 1 or args.n_gen < 2:
        sys.exit("peer_sdpa_bench: error: --reps and --gen-reps must be >= 1, --n-gen >= 2")
    with open(args.shape) as f:
        cfg = json.load(f)
    depths = parse_list(args.depth, "--depth", 0)
    gen_depths = [] if args.generate_depth == "none" else parse_list(args.generate_depth, "--generate-depth", 0)

    name = os.path.splitext(os.path.basename(args.shape))[0] + " (random)"
    bw = copy_bandwidth_gbs()
    log(f"{torch.cuda.get_device_name()}: copy bandwidth {bw:.1f} GB/s (read + write)")
    base = {
        "model": name, "arch": cfg["architectures"][0], "params": None, "model_bytes": None,
        "threads": None, "bw_gbps": bw, "peer": True,
        "source": f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
                  f"{torch.cuda.get_device_name()}, {time.strftime('%Y-%m-%d')}",
    }
    rows = attention_rows(cfg, depths, args.budget, args.reps, base)
    if gen_depths:
        rows += generate_rows(cfg, gen_depths, args.n_gen, args.gen_reps, base)
    text = json.dumps(rows, indent=1)
    if args.output == "-":
        print(text)
    else:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
