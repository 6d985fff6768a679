#!/usr/bin/env python3
"""Builds the training corpus of the bundled model as token ids (uint16), ready to travel to the GPU.

Sources (all public domain or permissively licensed, see models/README.md):
  - the public-domain books in ../shared/data/texts, except the held-out evaluation book
    (pride-and-prejudice.txt), Project Gutenberg header/footer stripped;
  - the King James Bible (public domain) from Debian's bible-kjv-text, read out with its `bible` program
    (package bible-kjv), verse numbers removed;
  - Debian's python3.11-doc reST sources (/usr/share/doc/python3.11/html/_sources, PSF license).

    apt-get install python3.11-doc bible-kjv
    python tools/prepare_corpus.py --out .train/corpus   # writes books.bin, docs.bin, heldout.bin, manifest.json

books.bin holds the prose (books and the Bible), docs.bin the Python documentation; heldout.bin is the held-out book, for the evaluation loss in the training log only. Each .bin is a flat
little-endian uint16 array of token ids; documents are separated by <|eos|>.
"""
import argparse
import json
import re
import subprocess
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

HELD_OUT = "pride-and-prejudice.txt"


def strip_gutenberg(text: str) -> str:
    start = re.search(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n", text)
    if start:
        text = text[start.end():]
    end = re.search(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", text)
    if end:
        text = text[: end.start()]
    return text.replace("\r\n", "\n").strip() + "\n"


def king_james_bible() -> str:
    text = subprocess.run(["bible", "-l0", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"(?m)^ +\d+ ", "", text).strip() + "\n"


def encode_docs(tok: Tokenizer, docs: list[str], eos: int) -> np.ndarray:
    ids: list[int] = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eos)
    return np.asarray(ids, dtype=np.uint16)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", default="../shared/data/texts")
    ap.add_argument("--pydoc", default="/usr/share/doc/python3.11/html/_sources")
    ap.add_argument("--tokenizer", default="models/default/tokenizer.json")
    ap.add_argument("--out", default=".train/corpus")
    args = ap.parse_args()

    tok = Tokenizer.from_file(args.tokenizer)
    eos = tok.token_to_id("<|eos|>")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    books = sorted(p for p in Path(args.texts).glob("*.txt") if p.name != HELD_OUT)
    book_docs = [strip_gutenberg(p.read_text(encoding="utf-8", errors="replace")) for p in books]
    book_docs.append(king_james_bible())
    doc_files = sorted(Path(args.pydoc).rglob("*.rst.txt"))
    py_docs = [p.read_text(encoding="utf-8", errors="replace") for p in doc_files]

    manifest = {"tokenizer": args.tokenizer, "held_out": HELD_OUT, "parts": {}}
    held_out = [strip_gutenberg((Path(args.texts) / HELD_OUT).read_text(encoding="utf-8", errors="replace"))]
    for name, docs, srcs in (("books", book_docs, [p.name for p in books] + ["King James Bible (bible-kjv-text)"]),
                             ("heldout", held_out, [HELD_OUT]),
                             ("docs", py_docs, [f"{len(doc_files)} files under {args.pydoc}"])):
        ids = encode_docs(tok, docs, eos)
        ids.tofile(out / f"{name}.bin")
        manifest["parts"][name] = {"tokens": int(ids.size), "bytes": int(sum(len(d.encode()) for d in docs)),
                                   "sources": srcs}
        print(f"{name}: {ids.size} tokens from {len(docs)} documents")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
