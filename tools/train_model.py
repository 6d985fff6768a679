#!/usr/bin/env python3
"""Trains the bundled default model: a small Llama-architecture GQA model with an 8192-token context.

Runs on one GPU (the H200 here) with PyTorch + HF transformers, from the token files of
tools/prepare_corpus.py, for a fixed wall-clock budget, on a sequence-length curriculum (many short steps
first, where retrieval is learned quickly; the full 8192-token context last):

    python tools/train_model.py --corpus .train/corpus --out models/default --minutes 5

Batches mix natural text (books, Python docs) with synthetic long-range retrieval documents built on the fly
(passkeys at random depths, key-value lookups, repeated passages), so that full attention learns to fetch a
fact from anywhere in the context. Writes HF format (config.json, model.safetensors bf16,
generation_config.json), the loss log (train_log.csv: training loss, loss on the retrieval answers, loss on
the held-out book) and prints a passkey check at the end.
"""
import argparse
import csv
import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

PASSKEY_INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
                 "I will quiz you about the important information there.\n")
PASSKEY_FACT = " The pass key is {key}. Remember it. {key} is the pass key. "
PASSKEY_QUESTION = "\nWhat is the pass key? The pass key is"


class Batcher:
    """Rows of seq_len + 1 token ids: natural text windows or synthetic retrieval documents."""

    def __init__(self, corpus: Path, tok: Tokenizer, seq_len: int, synthetic_share: float, answer_weight: float,
                 prose_share: float, seed: int):
        self.books = np.fromfile(corpus / "books.bin", dtype=np.uint16)
        self.docs = np.fromfile(corpus / "docs.bin", dtype=np.uint16)
        self.tok = tok
        self.seq_len = seq_len
        self.synthetic_share = synthetic_share
        self.answer_weight = answer_weight
        self.prose_share = prose_share
        self.rng = random.Random(seed)
        self.intro = tok.encode(PASSKEY_INTRO, add_special_tokens=False).ids
        self.question = tok.encode(PASSKEY_QUESTION, add_special_tokens=False).ids

    def window(self, n: int, source=None) -> list[int]:
        src = source if source is not None else (self.books if self.rng.random() < self.prose_share else self.docs)
        start = self.rng.randrange(0, len(src) - n - 1)
        return src[start:start + n].tolist()

    def enc(self, s: str) -> list[int]:
        return self.tok.encode(s, add_special_tokens=False).ids

    def passkey_parts(self, n: int, exact: bool = False) -> tuple[list[int], list[int]]:
        """(prompt ending in the question, answer tokens) with the fact at a random depth."""
        key = str(self.rng.randrange(10000, 100000))
        fact = self.enc(PASSKEY_FACT.format(key=key))
        answer = self.enc(" " + key + ".")
        length = n if exact or self.rng.random() < 0.5 else self.rng.randrange(256, n)
        filler = length - len(self.intro) - len(fact) - len(self.question) - len(answer) - 1
        filler = max(filler, 16)
        depth = self.rng.randrange(0, filler + 1)
        text = self.window(filler, self.books)
        return [0] + self.intro + text[:depth] + fact + text[depth:] + self.question, answer

    def passkey(self, n: int) -> tuple[list[int], int]:
        prompt, answer = self.passkey_parts(n)
        return prompt + answer, len(answer)

    def kv_lookup(self, n: int) -> tuple[list[int], int]:
        m = max(4, n // 12)
        while True:
            pairs = [(f"{self.rng.randrange(16**6):06x}", str(self.rng.randrange(1000, 10000))) for _ in range(m)]
            k, v = self.rng.choice(pairs)
            ids = self.enc("".join(f"key {a} value {b}\n" for a, b in pairs) + f"\nThe value of key {k} is")
            answer = self.enc(f" {v}.")
            if len(ids) + len(answer) < n:
                return [0] + ids + answer, len(answer)
            m = int(m * 0.85)

    def repeat(self, n: int) -> tuple[list[int], int]:
        passage = self.window(self.rng.randrange(32, 256))
        gap = self.window(max(16, self.rng.randrange(n // 4, n) - 2 * len(passage)))
        return [0] + passage + gap + passage, len(passage) - 1

    def row(self) -> tuple[list[int], list[float]]:
        """Token ids and per-target loss weights; retrieval answers weigh `answer_weight`."""
        n = self.seq_len + 1
        if self.rng.random() >= self.synthetic_share:
            return self.window(n), [1.0] * (n - 1)
        kind = self.rng.random()
        ids, n_answer = self.passkey(n) if kind < 0.5 else (self.kv_lookup(n) if kind < 0.75 else self.repeat(n))
        ids = ids[:n]
        weights = [1.0] * (len(ids) - 1)
        for i in range(max(0, len(ids) - 1 - n_answer), len(ids) - 1):
            weights[i] = self.answer_weight
        if len(ids) < n:  # pad with an <|eos|> and natural text, like packed documents
            pad = [1] + self.window(n - len(ids) - 1)
            ids += pad
            weights += [1.0] * len(pad)
        return ids, weights

    def batch(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        data = [self.row() for _ in range(rows)]
        return (torch.tensor([d[0] for d in data], dtype=torch.long),
                torch.tensor([d[1] for d in data], dtype=torch.float32))


def model_config(args) -> LlamaConfig:
    return LlamaConfig(vocab_size=8192, hidden_size=args.hidden, intermediate_size=args.intermediate,
                       num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=2,
                       max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5,
                       tie_word_embeddings=True, bos_token_id=0, eos_token_id=1)


def add_residual_dropout(model, p: float) -> None:
    """Dropout on every attention and MLP output before the residual add, for training only: the corpus is
    small (about 7M tokens) and seen many times, and dropout is what keeps repeated data from being
    memorised (Xue et al., "To Repeat or Not To Repeat", 2023). The saved model is a plain Llama."""
    for layer in model.model.layers:
        for module in (layer.self_attn, layer.mlp):
            module.register_forward_hook(lambda mod, args, out: (
                (torch.nn.functional.dropout(out[0], p, mod.training),) + tuple(out[1:]) if isinstance(out, tuple)
                else torch.nn.functional.dropout(out, p, mod.training)))


def parse_phases(text: str) -> list[tuple[int, float]]:
    """"1024:0.35,8192:0.65" -> [(1024, 0.35), (8192, 1.0)]: sequence length and the end of its time share."""
    phases, end = [], 0.0
    for item in text.split(","):
        length, share = item.split(":")
        end += float(share)
        phases.append((int(length), end))
    if abs(end - 1.0) > 1e-6:
        raise SystemExit(f"--phases: shares sum to {end}, not 1")
    return phases


@torch.no_grad()
def passkey_check(model, batcher: Batcher, lengths, trials: int, device) -> dict:
    results = {}
    model.eval()
    for n in lengths:
        ok = 0
        for _ in range(trials):
            prompt, answer = batcher.passkey_parts(n, exact=True)
            out = model.generate(torch.tensor([prompt], device=device), max_new_tokens=len(answer),
                                 do_sample=False)
            ok += out[0, len(prompt):].tolist() == answer
        results[n] = ok / trials
    model.train()
    return results


@torch.no_grad()
def held_out_loss(model, held_out: np.ndarray, seq_len: int, rows: int, device) -> float:
    """Mean next-token loss over `rows` fixed windows of the held-out book (the same windows every call)."""
    model.eval()
    starts = np.linspace(0, len(held_out) - seq_len - 2, rows).astype(np.int64)
    x = torch.tensor(np.stack([held_out[s:s + seq_len + 1] for s in starts]).astype(np.int64), device=device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        logits = model(input_ids=x[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
    model.train()
    return loss.item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".train/corpus")
    ap.add_argument("--tokenizer", default="models/default/tokenizer.json")
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--phases", default="1024:0.4,2048:0.2,4096:0.2,8192:0.2",
                    help="sequence-length curriculum: LEN:SHARE of the time budget, in order")
    ap.add_argument("--batch-tokens", type=int, default=131072)
    ap.add_argument("--synthetic-share", type=float, default=0.5)
    ap.add_argument("--prose-share", type=float, default=0.75, help="natural text windows from books.bin")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--answer-weight", type=float, default=20.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--intermediate", type=int, default=1408)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    phases = parse_phases(args.phases)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    tok = Tokenizer.from_file(args.tokenizer)
    batcher = Batcher(Path(args.corpus), tok, phases[0][0], args.synthetic_share, args.answer_weight,
                      args.prose_share, args.seed)
    held_out = np.fromfile(Path(args.corpus) / "heldout.bin", dtype=np.uint16)
    model = LlamaForCausalLM._from_config(model_config(args), attn_implementation="sdpa").to(device)
    add_residual_dropout(model, args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.1f} M parameters on {device}; phases {phases}", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=device.type == "cuda")
    budget_s = args.minutes * 60
    warmup = 100
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train_log.csv", "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "tokens", "seconds", "seq_len", "lr", "loss", "answer_loss", "held_out_loss"])
    t0 = time.time()
    step = tokens = 0
    phase = 0
    while True:
        elapsed = time.time() - t0
        if elapsed > budget_s:
            break
        progress = elapsed / budget_s
        while progress > phases[phase][1]:
            phase += 1
            acc = passkey_check(model, batcher, [1024], 5, device)
            print(f"phase {phase}: sequence length {phases[phase][0]}; passkey at 1024 {acc[1024]:.0%}", flush=True)
        batcher.seq_len = phases[phase][0]
        rows = max(1, args.batch_tokens // batcher.seq_len)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, w = batcher.batch(rows)
        x, w = x.to(device, non_blocking=True), w.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            logits = model(input_ids=x[:, :-1]).logits
        ce = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1),
                                             reduction="none")
        w = w.reshape(-1)
        loss = (ce * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += rows * batcher.seq_len
        if step % 25 == 0:
            answers = w > 1
            answer_loss = (ce * answers).sum() / answers.sum().clamp(min=1)
            ho = held_out_loss(model, held_out, 1024, 16, device) if step % 100 == 0 else None
            writer.writerow([step, tokens, round(time.time() - t0, 1), batcher.seq_len, f"{lr:.3e}",
                             f"{loss.item():.4f}", f"{answer_loss.item():.4f}",
                             "" if ho is None else f"{ho:.4f}"])
            log.flush()
            if step % 100 == 0:
                print(f"step {step} len {batcher.seq_len} tokens {tokens / 1e6:.1f}M loss {loss.item():.3f} "
                      f"answer {answer_loss.item():.3f} held-out {ho:.3f} "
                      f"{tokens / (time.time() - t0) / 1e3:.0f}K tok/s", flush=True)
    log.close()

    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    # repetition_penalty: the small model loops on a word without one (dsa generate and HF generate read it).
    gen = {"bos_token_id": 0, "eos_token_id": 1, "do_sample": True, "temperature": 0.8, "top_k": 40, "top_p": 0.95,
           "repetition_penalty": 1.15}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    if Path(args.tokenizer).resolve() != (out / "tokenizer.json").resolve():
        shutil.copy(args.tokenizer, out / "tokenizer.json")
    print(f"trained {step} steps, {tokens / 1e6:.0f}M tokens in {time.time() - t0:.0f} s", flush=True)
    acc = passkey_check(model, batcher, [1024, 4096, 8000], 10, device)
    print("passkey accuracy (full attention, HF):", acc, flush=True)
    prompt = tok.encode("It was a bright cold day in April, and", add_special_tokens=True).ids
    sample = model.generate(torch.tensor([prompt], device=device), max_new_tokens=60, do_sample=True,
                            temperature=0.8, top_k=40)
    print("sample:", tok.decode(sample[0].tolist()), flush=True)


if __name__ == "__main__":
    main()
