#!/usr/bin/env python3
"""How far the CUDA backend's roundings alone move the logits of the golden test models.

The CUDA backend rounds, by design: the inputs of every projection to the weights' storage dtype, q/k/v to
bf16 (the KV cache and the tensor-core operands), and the unnormalised attention weights to bf16 before P.V.
This runs HF transformers in fp32 with exactly those roundings emulated (a custom attention function and
pre-hooks on every nn.Linear) and prints the worst per-position relative error of the prompt logits against
the golden fp32 logits. The CUDA backend's measured error (tests/gpu/test_cuda_model.cpp) should match it:
then the difference to the CPU reference is rounding, not a bug.

    /opt/hfref/bin/python tools/cuda_rounding_emulation.py [tests/data/models]
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AttentionInterface, AutoModelForCausalLM

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def rounded_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    q, k, v = (t.to(torch.bfloat16).float() for t in (query, key, value))
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = (q @ k.transpose(-1, -2)) * scaling
    n = s.shape[-1]
    s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
    e = torch.exp(s - s.max(-1, keepdim=True).values)  # the kernels round this (max 1) to bf16
    p = e.to(torch.bfloat16).float() / e.sum(-1, keepdim=True)
    return (p @ v).transpose(1, 2).contiguous(), None


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/models"
    torch.set_num_threads(2)
    AttentionInterface.register("dsa_cuda_rounding", rounded_attention)
    for d in sorted(p for p in root.iterdir() if (p / "golden.json").exists()):
        g = json.loads((d / "golden.json").read_text())
        ids = g["ids"][: g["prompt_len"]]
        vocab = g["logits_shape"][1]
        golden = np.fromfile(d / "golden_logits.f32", dtype="<f4").reshape(-1, vocab)[: len(ids)]
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                     attn_implementation="dsa_cuda_rounding").eval()
        storage = DTYPES[g["storage_dtype"]]
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.register_forward_pre_hook(lambda mod, args: (args[0].to(storage).float(),))
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids])).logits[0].numpy()
        worst = max(np.linalg.norm(out[r] - golden[r]) / np.linalg.norm(golden[r]) for r in range(len(ids)))
        total = np.linalg.norm(out - golden) / np.linalg.norm(golden)
        print(f"{d.name} ({g['storage_dtype']}): relative error {total:.2e}, worst position {worst:.2e}")


if __name__ == "__main__":
    main()
