#!/usr/bin/env python3
"""Trains the bundled default model: a small Llama-architecture GQA model with an 8192-token context.

Runs on one GPU (the H200 here) with PyTorch + HF transformers, from the token files of
tools/prepare_corpus.py, for a fixed wall-clock budget:

    python tools/train_model.py --corpus .train/corpus --out models/default --minutes 8

Batches mix natural text (books, Python docs) with synthetic long-range retrieval documents built on the fly
(passkeys at random depths, key-value lookups, repeated passages), so that full attention learns to fetch a
fact from anywhere in the context. Writes HF format (config.json, model.safetensors bf16,
generation_config.json), the loss log (train_log.csv) and prints a passkey check at the end.
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
                 seed: int):
        self.books = np.fromfile(corpus / "books.bin", dtype=np.uint16)
        self.docs = np.fromfile(corpus / "docs.bin", dtype=np.uint16)
        self.tok = tok
        self.seq_len = seq_len
        self.synthetic_share = synthetic_share
        self.answer_weight = answer_weight
        self.rng = random.Random(seed)
        self.intro = tok.encode(PASSKEY_INTRO, add_special_tokens=False).ids
        self.question = tok.encode(PASSKEY_QUESTION, add_special_tokens=False).ids

    def window(self, n: int, source=None) -> list[int]:
        src = source if source is not None else (self.books if self.rng.random() < 0.5 else self.docs)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".train/corpus")
    ap.add_argument("--tokenizer", default="models/default/tokenizer.json")
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--seq-len", type=int, default=8192)
    ap.add_argument("--batch-tokens", type=int, default=131072)
    ap.add_argument("--synthetic-share", type=float, default=0.5)
    ap.add_argument("--answer-weight", type=float, default=50.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--intermediate", type=int, default=1408)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = Tokenizer.from_file(args.tokenizer)
    batcher = Batcher(Path(args.corpus), tok, args.seq_len, args.synthetic_share, args.answer_weight, args.seed)
    model = LlamaForCausalLM._from_config(model_config(args), attn_implementation="sdpa").to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.1f} M parameters on {device}", flush=True)

    rows = max(1, args.batch_tokens // args.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=device.type == "cuda")
    budget_s = args.minutes * 60
    warmup = 100
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train_log.csv", "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "tokens", "seconds", "lr", "loss"])
    t0 = time.time()
    step = 0
    while True:
        elapsed = time.time() - t0
        if elapsed > budget_s:
            break
        progress = elapsed / budget_s
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, w = batcher.batch(rows)
        x, w = x.to(device, non_blocking=True), w.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            logits = model(input_ids=x[:, :-1]).logits
        ce = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1),
                                             reduction="none")
        loss = (ce * w.reshape(-1)).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            writer.writerow([step, step * rows * args.seq_len, round(time.time() - t0, 1), f"{lr:.3e}",
                             f"{loss.item():.4f}"])
        if step % 50 == 0:
            print(f"step {step} tokens {step * rows * args.seq_len / 1e6:.1f}M loss {loss.item():.3f} "
                  f"{step * rows * args.seq_len / (time.time() - t0) / 1e3:.0f}K tok/s", flush=True)
    log.close()

    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    gen = {"bos_token_id": 0, "eos_token_id": 1, "do_sample": True, "temperature": 0.8, "top_k": 40, "top_p": 0.95}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    if Path(args.tokenizer).resolve() != (out / "tokenizer.json").resolve():
        shutil.copy(args.tokenizer, out / "tokenizer.json")
    acc = passkey_check(model, batcher, [1024, 4096, 8000], 5, device)
    print("passkey accuracy (full attention, HF):", acc, flush=True)
    prompt = tok.encode("It was a bright cold day in April, and", add_special_tokens=True).ids
    sample = model.generate(torch.tensor([prompt], device=device), max_new_tokens=60, do_sample=True,
                            temperature=0.8, top_k=40)
    print("sample:", tok.decode(sample[0].tolist()), flush=True)


if __name__ == "__main__":
    main()
