#!/usr/bin/env python3
"""Writes the bundled default model's weights: a small random-weight Llama-architecture GQA model.

The README's run command works out of the box with it; the text it writes is not meaningful until the
trained model replaces it. Uses HF transformers (the same classes dsa is checked against), fixed seed.

    /opt/hfref/bin/python tools/make_default_model.py models/default

The tokenizer (models/default/tokenizer.json, byte-level BPE, vocab 8192, <|bos|>=0 <|eos|>=1) is made by
tools/train_tokenizer.py; this script only needs its vocabulary size and special ids.
"""
import json
import sys
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/default")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(20261126)
    config = LlamaConfig(
        vocab_size=8192,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=1,
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    gen = {"bos_token_id": 0, "eos_token_id": 1, "do_sample": True, "temperature": 0.8, "top_k": 40,
           "top_p": 0.95}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
