#!/usr/bin/env python3
"""Golden logits of the bundled default model, with HF transformers as the independent reference: checks that
the trained checkpoint loads in transformers and gives the test (tests/unit/test_cpu_forward.cpp,
DefaultModel) the logits dsa must reproduce.

    python tools/make_default_golden.py models/default tests/data/default_model

The prompt is the BOS token plus the start of the held-out book (.train/pride-and-prejudice.txt or
../shared/data/texts/pride-and-prejudice.txt), PROMPT_LEN tokens in all, then DECODE_STEPS greedy steps
through HF's KV cache. Same file format as tools/make_golden_models.py (golden.json, golden_logits.f32), fp32
eager attention computed from the stored bf16 weights.
"""
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

from make_golden_models import DECODE_STEPS, golden

PROMPT_LEN = 40


def main() -> None:
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    repo = Path(__file__).resolve().parent.parent
    book = next(p for p in (repo / ".train" / "pride-and-prejudice.txt",
                            repo.parent / "shared" / "data" / "texts" / "pride-and-prejudice.txt") if p.exists())
    torch.set_num_threads(1)  # deterministic summation order
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    text = book.read_text(encoding="utf-8")
    text = text[text.index("It is a truth universally acknowledged"):]
    prompt = tok.encode(text, add_special_tokens=True).ids[:PROMPT_LEN]
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    ids, logits = golden(ref, prompt)
    out.mkdir(parents=True, exist_ok=True)
    logits.astype("<f4").tofile(out / "golden_logits.f32")
    meta = {"prompt_len": PROMPT_LEN, "decode_steps": DECODE_STEPS, "ids": ids, "logits_shape": list(logits.shape)}
    (out / "golden.json").write_text(json.dumps(meta) + "\n")
    print(f"golden: prompt {tok.decode(prompt)!r} -> greedy {tok.decode(ids[PROMPT_LEN:])!r}")


if __name__ == "__main__":
    main()
