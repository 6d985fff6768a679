#!/usr/bin/env python3
"""Trains the bundled default model's tokenizer: a GPT-2-style byte-level BPE, vocab 8192.

Trained with HF `tokenizers` (the reference dsa is checked against) on the shared public-domain books,
leaving out pride-and-prejudice.txt (the held-out evaluation book). Fixed settings, one thread of input
order, so two runs give byte-identical files.

    /opt/hfref/bin/python tools/train_tokenizer.py [TEXTS_DIR] [OUT_DIR]

defaults: ../shared/data/texts and models/default. Writes OUT_DIR/tokenizer.json and
OUT_DIR/tokenizer_config.json.
"""
import json
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VOCAB_SIZE = 8192
SPECIAL_TOKENS = ["<|bos|>", "<|eos|>", "<|pad|>"]  # ids 0, 1, 2: the trainer puts them first
HELD_OUT = "pride-and-prejudice.txt"


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    texts = Path(sys.argv[1]) if len(sys.argv) > 1 else repo.parent / "shared" / "data" / "texts"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else repo / "models" / "default"
    books = sorted(p for p in texts.glob("*.txt") if p.name != HELD_OUT)
    if not books:
        sys.exit(f"train_tokenizer.py: no *.txt books in {texts}")

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(p) for p in books], trainer)
    bos = tok.token_to_id("<|bos|>")
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2], "special tokens must be ids 0, 1, 2"
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A",
        pair="<|bos|> $A <|bos|> $B:1",
        special_tokens=[("<|bos|>", bos)],
    )

    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"), pretty=False)
    # HF semantics: the template already adds <|bos|>, so add_bos_token=true only restates it; no EOS is
    # appended to prompts. bos/eos/pad name the special tokens for generation and padding.
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|bos|>",
        "eos_token": "<|eos|>",
        "pad_token": "<|pad|>",
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 8192,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"trained on {', '.join(p.name for p in books)}: vocab {tok.get_vocab_size()}, wrote {out}")


if __name__ == "__main__":
    main()
