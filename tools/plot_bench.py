#!/usr/bin/env python3
"""PNG plots and a merged markdown table from `dsa bench -o json|jsonl` output and tools/peer_sdpa_bench.py
output (same field names, docs/bench.md). Any number of files; rows are grouped into series by
(backend, attn, budget), so one dsa run per policy and the peers land on the same axes.

  python3 tools/plot_bench.py bench.json kernels.json peer.json --out docs/img --table

Writes, for the rows present:
  tokens_per_s.png   tg rows: decode tokens/s vs depth, one line per series (error bars: stddev)
  attention_ms.png   attn rows (dsa bench --kernels, peer SDPA): attention step ms over all layers vs depth
  speedup.png        speedup over full attention vs depth: attn rows' speedup field, and tg rows divided
                     by the full tg row of the same backend, test length and depth
--table prints one markdown table of every row to stdout (peers marked with their source).
"""
import argparse
import json
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load_rows(path):
    with open(path) as f:
        text = f.read().strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for r in rows:
        if "kind" not in r or "n_depth" not in r:
            sys.exit(f"plot_bench: error: {path}: rows need the fields 'kind' and 'n_depth' (dsa bench -o json)")
    return rows


def series_name(r):
    label = r["backend"] + " " + r["attn"]
    if r.get("budget") is not None:
        label += f" B={r['budget']}"
    if r["kind"] == "tg":
        label += f" (tg{r['n_gen']})"
    return label


def depth_axis(ax, depths):
    """Depths as evenly spaced categories (0 and 131072 on one axis)."""
    ax.set_xticks(range(len(depths)))
    ax.set_xticklabels([f"{d // 1024}K" if d >= 1024 and d % 1024 == 0 else str(d) for d in depths])
    ax.set_xlabel("context depth (tokens in the cache)")


def line_plot(rows, value, error, ylabel, title, path, logy=False):
    depths = sorted({r["n_depth"] for r in rows})
    pos = {d: i for i, d in enumerate(depths)}
    groups = defaultdict(list)
    for r in rows:
        groups[series_name(r)].append(r)
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["n_depth"])
        xs = [pos[r["n_depth"]] for r in rs]
        ys = [value(r) for r in rs]
        es = [error(r) for r in rs] if error else None
        style = "--" if rs[0].get("peer") else "-"
        ax.errorbar(xs, ys, yerr=es, marker="o", linestyle=style, capsize=3, label=name)
    depth_axis(ax, depths)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot_bench: wrote {path}", file=sys.stderr)


def tg_speedups(tg_rows):
    """tg rows of sparse policies divided by the full row of the same backend, length and depth."""
    full = {(r["backend"], r["n_gen"], r["n_depth"]): r["avg_ts"] for r in tg_rows if r["attn"] == "full"}
    out = []
    for r in tg_rows:
        base = full.get((r["backend"], r["n_gen"], r["n_depth"]))
        if r["attn"] != "full" and base:
            out.append(dict(r, speedup=r["avg_ts"] / base))
    return out


def model_title(rows):
    models = sorted({r["model"] for r in rows})
    return ", ".join(models)


def fmt_num(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def print_table(rows):
    print("| model | backend | attn | budget | test | t/s | ms | GB/s | % BW | speedup | source |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        if r["kind"] == "attn":
            ts, ms = "-", f"{r['avg_ms']:.3f} ± {r['stddev_ms']:.3f}"
        else:
            ts, ms = f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}", f"{r['ms_per_token']:.3f}"
        budget = "-" if r.get("budget") is None else str(r["budget"])
        speedup = r.get("speedup")
        source = r.get("source", "dsa") if r.get("peer") else "dsa"
        print(f"| {r['model']} | {r['backend']} | {r['attn']} | {budget} | {r['test']} | {ts} | {ms} | "
              f"{fmt_num(r.get('gbps'), 1)} | {fmt_num(r.get('bw_pct'), 1)} | "
              f"{'-' if speedup is None else f'{speedup:.2f}x'} | {source} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="dsa bench -o json/jsonl output, peer_sdpa_bench.py output")
    ap.add_argument("--out", default=".", help="directory for the PNG files")
    ap.add_argument("--table", action="store_true", help="print a merged markdown table to stdout")
    args = ap.parse_args()
    rows = [r for path in args.files for r in load_rows(path)]
    if not rows:
        sys.exit("plot_bench: error: no rows in the input files")
    os.makedirs(args.out, exist_ok=True)
    title = model_title(rows)
    tg = [r for r in rows if r["kind"] == "tg"]
    attn = [r for r in rows if r["kind"] == "attn"]
    if tg:
        line_plot(tg, lambda r: r["avg_ts"], lambda r: r["stddev_ts"], "decode tokens/s",
                  f"Generation throughput vs depth: {title}", os.path.join(args.out, "tokens_per_s.png"))
    if attn:
        line_plot(attn, lambda r: r["avg_ms"], lambda r: r["stddev_ms"], "ms per decode step (all layers)",
                  f"Decode attention vs depth: {title}", os.path.join(args.out, "attention_ms.png"), logy=True)
    speedups = [r for r in attn if r.get("speedup") is not None and r["attn"] != "full"] + tg_speedups(tg)
    if speedups:
        line_plot(speedups, lambda r: r["speedup"], None, "speedup over full attention",
                  f"Speedup over full attention: {title}", os.path.join(args.out, "speedup.png"))
    if args.table:
        print_table(rows)


if __name__ == "__main__":
    main()
