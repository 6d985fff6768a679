#!/usr/bin/env python3
"""Builds the tiny random models of tests/data/models/ and their golden logits, with HF transformers as the
independent reference for the CPU backend.

One model per architecture feature the engine must get right:
  llama        GQA 4/2 heads, untied lm_head, llama3 rope scaling, fp32 storage
  llama_tied   GQA 6/2 heads, 3 layers, tied embeddings, bf16 storage, default rope
  mistral      GQA 4/1 heads, linear rope scaling, f16 storage
  qwen2        q/k/v bias, tied embeddings, yarn rope scaling, fp32 storage
  qwen3        q/k norm, head_dim 48 with hidden 64 and 4 heads, bf16 storage

Each directory gets config.json, generation_config.json, model.safetensors, tokenizer.json (a byte-level BPE
trained here on the start of tinyshakespeare, shared by all models) and the golden files:
  golden.json         prompt_len, ids (prompt + 8 greedy decode tokens), logits shape, HF's rope inv_freq
                      and attention_scaling
  golden_logits.f32   [len(ids)][vocab] little-endian float32: the prompt's logits from one prefill, then
                      the logits of each single-token decode step (HF's KV cache)
Beside them, rope_cases.json: config.json texts with the RoPE settings of real checkpoints (Llama 3.1 8B,
Qwen2.5 7B with yarn) and edge cases (yarn with mscale/mscale_all_dim and truncate=false, yarn with an
explicit attention_factor, linear with head_dim 80, head_dim 256), each with HF's inv_freq and
attention_scaling.
The reference reloads every model from the saved files (so it checks what the files say) and runs it in
fp32 with eager attention; bf16/f16 models are computed in fp32 from their rounded weights. Fixed seeds:
two runs give identical files.

    /opt/hfref/bin/python tools/make_golden_models.py [OUT_DIR]     (default tests/data/models)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config)
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

VOCAB = 384
PROMPT_LEN = 45  # two full pages of 16 and a partial one
DECODE_STEPS = 8
TOKENIZER_TEXT_BYTES = 16384
PROMPT_TEXT = "First Citizen:\nBefore we proceed any further, hear me speak."

COMMON = dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=1, max_position_embeddings=256, rms_norm_eps=1e-5)

# (name, config class, config kwargs, storage dtype, config.json rope style)
# rope style "v4": rope_theta + rope_scaling at the top level, as most hub checkpoints are written;
# "v5": transformers 5's rope_parameters.
VARIANTS = [
    ("llama", LlamaConfig,
     dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          tie_word_embeddings=False,
          rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                               high_freq_factor=4.0, original_max_position_embeddings=64)),
     torch.float32, "v4"),
    ("llama_tied", LlamaConfig,
     dict(hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
          tie_word_embeddings=True, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
     torch.bfloat16, "v5"),
    ("mistral", MistralConfig,
     dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
          head_dim=16, tie_word_embeddings=False, sliding_window=None,
          rope_parameters=dict(rope_type="linear", rope_theta=10000.0, factor=2.0)),
     torch.float16, "v4"),
    ("qwen2", Qwen2Config,
     dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          tie_word_embeddings=True, use_sliding_window=False,
          rope_parameters=dict(rope_type="yarn", rope_theta=1000000.0, factor=4.0,
                               original_max_position_embeddings=64)),
     torch.float32, "v5"),
    ("qwen3", Qwen3Config,
     dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          head_dim=48, tie_word_embeddings=False, use_sliding_window=False,
          rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
     torch.bfloat16, "v5"),
]


def shape_config(arch: str, hidden: int, heads: int, head_dim: int, max_pos: int, rope_theta: float,
                 rope_scaling: dict | None) -> dict:
    cfg = dict(architectures=[arch], hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=1,
               num_attention_heads=heads, num_key_value_heads=heads, head_dim=head_dim, vocab_size=VOCAB,
               max_position_embeddings=max_pos, rms_norm_eps=1e-5, rope_theta=rope_theta,
               tie_word_embeddings=False)
    if rope_scaling is not None:
        cfg["rope_scaling"] = rope_scaling
    return cfg


ROPE_CASES = [
    ("llama-3.1-8b", shape_config("LlamaForCausalLM", 4096, 32, 128, 131072, 500000.0,
                                  dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                       original_max_position_embeddings=8192))),
    ("qwen2.5-7b-yarn", shape_config("Qwen2ForCausalLM", 3584, 28, 128, 131072, 1000000.0,
                                     dict(type="yarn", factor=4.0, original_max_position_embeddings=32768))),
    ("yarn-mscale-no-truncate", shape_config("LlamaForCausalLM", 1024, 16, 64, 163840, 10000.0,
                                             dict(rope_type="yarn", factor=40.0, mscale=1.0, mscale_all_dim=0.8,
                                                  beta_fast=24, beta_slow=2, truncate=False,
                                                  original_max_position_embeddings=4096))),
    ("yarn-attention-factor", shape_config("Qwen3ForCausalLM", 1024, 8, 128, 65536, 1000000.0,
                                           dict(rope_type="yarn", factor=2.0, attention_factor=1.3,
                                                original_max_position_embeddings=32768))),
    ("linear-head-dim-80", shape_config("MistralForCausalLM", 640, 8, 80, 8192, 10000.0,
                                        dict(rope_type="linear", factor=4.0))),
    ("default-head-dim-256", shape_config("LlamaForCausalLM", 2048, 8, 256, 8192, 10000.0, None)),
]

CONFIG_CLASSES = {"LlamaForCausalLM": LlamaConfig, "MistralForCausalLM": MistralConfig,
                  "Qwen2ForCausalLM": Qwen2Config, "Qwen3ForCausalLM": Qwen3Config}


def rope_cases() -> list[dict]:
    out = []
    for name, cfg in ROPE_CASES:
        config = CONFIG_CLASSES[cfg["architectures"][0]].from_dict(dict(cfg))
        rot = LlamaRotaryEmbedding(config)
        out.append(dict(name=name, config=cfg, inv_freq=[float(x) for x in rot.inv_freq.float()],
                        attention_scaling=float(rot.attention_scaling)))
    return out


def train_tokenizer(text: str) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|bos|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    return tok


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights large enough that attention is far from uniform and logits far from flat (logits std ~2):
    projections ~N(0, 0.8/sqrt(in)), lm_head and embeddings ~N(0, 2/sqrt(hidden)) (the same matrix when
    tied), norms ~1 + N(0, 0.2), biases ~N(0, 0.2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or name.startswith("lm_head"):
                p.copy_(2.0 / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.8 / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=g))


def to_v4_rope(config_path: Path) -> None:
    cfg = json.loads(config_path.read_text())
    params = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = params
    config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


@torch.no_grad()
def golden(model, prompt: list[int]):
    out = model(input_ids=torch.tensor([prompt]), use_cache=True)
    rows = [out.logits[0]]
    past = out.past_key_values
    ids = list(prompt)
    for _ in range(DECODE_STEPS):
        nxt = int(rows[-1][-1].argmax())
        ids.append(nxt)
        out = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        rows.append(out.logits[0])
    return ids, torch.cat(rows).float().numpy()


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    out_root = Path(sys.argv[1]) if len(sys.argv) > 1 else repo / "tests" / "data" / "models"
    texts = repo.parent / "shared" / "data" / "texts"
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic summation order

    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "rope_cases.json").write_text(json.dumps(rope_cases()) + "\n")

    text = (texts / "tinyshakespeare.txt").read_text(encoding="utf-8")[:TOKENIZER_TEXT_BYTES]
    tok = train_tokenizer(text)
    prompt = tok.encode(PROMPT_TEXT + " " + text[2000:3000]).ids[:PROMPT_LEN]
    assert len(prompt) == PROMPT_LEN

    for seed, (name, cls, kwargs, dtype, rope_style) in enumerate(VARIANTS):
        d = out_root / name
        d.mkdir(parents=True, exist_ok=True)
        config = cls(**COMMON, **kwargs)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").float()
        randomize(model, 1000 + seed)
        if config.tie_word_embeddings:
            model.tie_weights()
        model.to(dtype).save_pretrained(d)
        if rope_style == "v4":
            to_v4_rope(d / "config.json")
        tok.save(str(d / "tokenizer.json"), pretty=False)

        ref = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        ids, logits = golden(ref, prompt)
        logits.astype("<f4").tofile(d / "golden_logits.f32")
        rot = ref.model.rotary_emb
        meta = {
            "prompt_len": PROMPT_LEN,
            "decode_steps": DECODE_STEPS,
            "ids": ids,
            "logits_shape": list(logits.shape),
            "storage_dtype": str(dtype).removeprefix("torch."),
            "inv_freq": [float(x) for x in rot.inv_freq.float()],
            "attention_scaling": float(rot.attention_scaling),
        }
        (d / "golden.json").write_text(json.dumps(meta) + "\n")
        p = torch.softmax(torch.from_numpy(logits), -1)
        print(f"{name}: {sum(q.stat().st_size for q in d.iterdir())} bytes, logits std {logits.std():.2f}, "
              f"mean top-1 prob {p.max(-1).values.mean():.2f}, decode ids {ids[PROMPT_LEN:]}")


if __name__ == "__main__":
    main()
