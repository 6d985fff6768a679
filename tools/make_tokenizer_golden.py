#!/usr/bin/env python3
"""Writes the tokenizer golden files under tests/data/tokenizer/ from HF `tokenizers` (the reference).

    /opt/hfref/bin/python tools/make_tokenizer_golden.py

For each of the three tokenizers (the shared Llama 2 and GPT-2-style Phi-2 tokenizer.json files and the
bundled models/default/tokenizer.json) it records, for 40 varied strings and 6 book excerpts: the ids with
and without the post-processor's special tokens (HF add_special_tokens=True/False) and HF's decode of the
ids with and without skip_special_tokens; plus decodes of random and hand-picked id sequences. Book
excerpts are stored as (book, byte offset, byte length); the test reads the text from the shared books.

components.json covers the components the three files do not use (every Split behavior, Digits,
Punctuation, Whitespace, Metaspace schemes, normalizers, added-token flags, unk handling, ...): each
variant is a base tokenizer.json with some top-level sections replaced ("set"), some model fields
replaced ("model_set") and added tokens appended ("added_tokens_append"); the test builds the same JSON.
"""
import copy
import json
import random
from pathlib import Path

from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "tests" / "data" / "tokenizer"

TOKENIZERS = {
    "llama2": "shared:tokenizers/llama2-tokenizer.json",
    "phi2": "shared:tokenizers/gpt2-style-phi2-tokenizer.json",
    "default": "source:models/default/tokenizer.json",
}

# Special tokens of each tokenizer, to put inside the text.
SPECIAL_TEXT = {
    "llama2": "<s>Hello</s> <unk> and <s> again</s>",
    "phi2": "<|endoftext|>text<|endoftext|> more<|endoftext|>",
    "default": "<|bos|>start<|eos|> end <|pad|><|pad|>x",
}

STRINGS = [
    "Hello world",
    "",
    " ",
    "\n",
    "   leading and trailing spaces   ",
    "multiple     spaces    between  words",
    "line one\nline two\n\nline four\n\n\n",
    "CRLF line\r\nnext line\r\n\r\nlast",
    "tabs\tand\t\tmore\ttabs\t",
    "I'm you're he's we've they'll I'd can't",
    "I'M YOU'RE HE'S WE'VE THEY'LL I'D CAN'T",
    "'s 're 'S 'Re don\u2019t won\u2018t",
    "Numbers: 0 7 42 1234 12345678901234567890 3.14159 -273.15 1,000,000",
    "Accents: caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m Z\u00fcrich S\u00e3o Paulo",
    "Combining: cafe\u0301 n\u0303o \u0130stanbul stra\u00dfe",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\uff0c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442",
    "Emoji \U0001F600\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 "
    "\U0001F3F3\ufe0f\u200d\U0001F308 \u2764\ufe0f",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj",
    "nbsp\u00a0thin\u2009ideographic\u3000space\u180emongolian\u2028ls",
    "bell\x07 null\x00 esc\x1b del\x7f",
    "def f(x):\n    return x**2  # comment\n\tif x != 0: pass\n",
    "https://example.com/path?q=1&r=2 \u2014 \u201cquotes\u201d \u2018single\u2019 \u00abguillemets\u00bb \u2026",
    "=" * 300,
    "a" * 70,
    "\ue000 \U0001F9FF \U00010348 \U0001D54F",
    "\ufb01 \ufb02 \uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \u2460\u2461\u2462 \u00b2\u00b3\u00bd",
    "Mixed CASE wOrDs and ALLCAPS and camelCaseIdentifiers",
    "  \n  \t \r\n",
    "\u2581already\u2581metaspace \u2581 \u2581\u2581",
    "<0x41> <unk> </s> <|endoftext|> <|bos|>",
    "\u00c3\u00a9 \u0120 \u010a mojibake",
    "\u1100\u1161\u11a8 \uac00 jamo",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u1780\u17d2\u1798\u17c2\u179a thai khmer",
    "end with space ",
]

BOOKS = [
    ("war-and-peace.txt", 0),  # starts with a BOM and CRLF lines
    ("war-and-peace.txt", 3 / 4),
    ("pride-and-prejudice.txt", 1 / 3),
    ("moby-dick.txt", 1 / 2),
    ("tinyshakespeare.txt", 1 / 2),
    ("moby-dick.txt", 0.9),
]
EXCERPT_BYTES = 4096


def load_base(spec: str) -> str:
    kind, rel = spec.split(":", 1)
    root = SHARED if kind == "shared" else REPO
    return (root / rel).read_text(encoding="utf-8")


def boundary(data: bytes, i: int) -> int:
    """The first UTF-8 character boundary at or after i."""
    while i < len(data) and (data[i] & 0xC0) == 0x80:
        i += 1
    return i


def excerpt(book: str, fraction: float):
    data = (SHARED / "texts" / book).read_bytes()
    start = boundary(data, int(len(data) * fraction))
    end = boundary(data, start + EXCERPT_BYTES)
    return start, end - start, data[start:end].decode("utf-8")


def encode_case(tok: Tokenizer, text: str) -> dict:
    ids = tok.encode(text, add_special_tokens=True).ids
    plain = tok.encode(text, add_special_tokens=False).ids
    return {
        "ids": ids,
        "ids_plain": plain,
        "decoded": tok.decode(ids, skip_special_tokens=False),
        "decoded_skip": tok.decode(ids, skip_special_tokens=True),
    }


def around(decoded: str, text: str):
    """A decode of a book excerpt, stored relative to the excerpt when it contains it."""
    at = decoded.find(text)
    if at < 0:
        return decoded
    return {"prefix": decoded[:at], "suffix": decoded[at + len(text):]}


def decode_cases(name: str, tok: Tokenizer) -> list:
    rng = random.Random(20261126)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    seqs = [[rng.randrange(vocab) for _ in range(16)] for _ in range(10)]
    picked = {
        "llama2": [["<0xE2>", "<0x82>", "<0xAC>"], ["<0xE2>", "<0x82>"], ["\u2581\u2581", "\u2581a"],
                   ["<0xF0>", "a", "<0x9F>", "<0x98>", "<0x80>"], ["<s>", "\u2581Hello", "</s>", "<unk>"]],
        "phi2": [["\u00c3"], ["\u00c3", "\u00a9"], ["<|endoftext|>", "\u0120hi"], ["\u0120", "\u010a", "\u00e2"]],
        "default": [["\u00c3"], ["<|bos|>", "\u0120him", "<|eos|>"], ["\u00e2\u0122", "\u00ac"], ["\u00e2\u0122\u0136", "\u0120the"]],
    }[name]
    for tokens in picked:
        seq = [tok.token_to_id(t) for t in tokens]
        assert None not in seq, (name, tokens)
        seqs.append(seq)
    return [{"ids": s, "text": tok.decode(s, skip_special_tokens=False),
             "text_skip": tok.decode(s, skip_special_tokens=True)} for s in seqs]


def golden(name: str, spec: str) -> dict:
    tok = Tokenizer.from_str(load_base(spec))
    cases = [dict(text=s, **encode_case(tok, s)) for s in STRINGS + [SPECIAL_TEXT[name]]]
    for book, fraction in BOOKS:
        offset, length, text = excerpt(book, fraction)
        c = encode_case(tok, text)
        c["decoded"] = around(c["decoded"], text)
        c["decoded_skip"] = around(c["decoded_skip"], text)
        cases.append(dict(book=book, offset=offset, length=length, **c))
    return {"tokenizer": spec, "cases": cases, "decode": decode_cases(name, tok)}


# ---- component variants -----------------------------------------------------------------------

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BYTES_ONLY = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
GPT2_BYTES = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


def split(pattern, behavior, invert=False):
    return {"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert}


def then_bytes(*pre):
    return {"type": "Sequence", "pretokenizers": list(pre) + [BYTES_ONLY]}


def metaspace(scheme, do_split=True):
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": do_split}


def added(content, id_, **flags):
    t = {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False}
    t.update(flags)
    return t


DEFAULT = "source:models/default/tokenizer.json"
LLAMA2 = "shared:tokenizers/llama2-tokenizer.json"
LLAMA2_METASPACE = {"normalizer": None}  # with a Metaspace pre-tokenizer and decoder, as older Llama files

VARIANTS = [
    {"name": "llama3_split_then_bytes", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": LLAMA3_PATTERN}, "Isolated"))}},
    {"name": "split_removed", "base": DEFAULT, "set": {"pre_tokenizer": then_bytes(split({"Regex": r"[-\s]"}, "Removed"))}},
    {"name": "split_isolated", "base": DEFAULT, "set": {"pre_tokenizer": then_bytes(split({"Regex": r"[-\s]"}, "Isolated"))}},
    {"name": "split_merged_with_previous", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": r"[-\s]"}, "MergedWithPrevious"))}},
    {"name": "split_merged_with_next", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": r"[-\s]"}, "MergedWithNext"))}},
    {"name": "split_contiguous", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": r"[-\s]"}, "Contiguous"))}},
    {"name": "split_invert_words", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": r"\w+"}, "Removed", invert=True))}},
    {"name": "split_string_space", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"String": " "}, "MergedWithPrevious"))}},
    {"name": "split_empty_matches", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": r"x*"}, "MergedWithNext"))}},
    {"name": "split_onig_classes", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes(split({"Regex": r"\s+|\w+|\d|\h+|[^\s\w]"}, "Isolated"))}},
    {"name": "digits_individual", "base": DEFAULT,
     "set": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
         {"type": "Digits", "individual_digits": True}, GPT2_BYTES]}}},
    {"name": "digits_grouped", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes({"type": "Digits", "individual_digits": False})}},
    {"name": "punctuation", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes({"type": "Punctuation", "behavior": "Isolated"})}},
    {"name": "punctuation_contiguous", "base": DEFAULT,
     "set": {"pre_tokenizer": then_bytes({"type": "Punctuation", "behavior": "Contiguous"})}},
    {"name": "whitespace", "base": DEFAULT, "set": {"pre_tokenizer": then_bytes({"type": "Whitespace"})}},
    {"name": "whitespace_split", "base": DEFAULT, "set": {"pre_tokenizer": then_bytes({"type": "WhitespaceSplit"})}},
    {"name": "bytelevel_prefix_space", "base": DEFAULT,
     "set": {"pre_tokenizer": dict(GPT2_BYTES, add_prefix_space=True)}},
    {"name": "no_pre_tokenizer", "base": DEFAULT, "set": {"pre_tokenizer": None}},
    {"name": "nfc", "base": DEFAULT, "set": {"normalizer": {"type": "NFC"}}},
    {"name": "nfd", "base": DEFAULT, "set": {"normalizer": {"type": "NFD"}}},
    {"name": "nfkc", "base": DEFAULT, "set": {"normalizer": {"type": "NFKC"}}},
    {"name": "nfkd", "base": DEFAULT, "set": {"normalizer": {"type": "NFKD"}}},
    {"name": "lowercase", "base": DEFAULT, "set": {"normalizer": {"type": "Lowercase"}}},
    {"name": "strip", "base": DEFAULT, "set": {"normalizer": {"type": "Strip", "strip_left": True, "strip_right": True}}},
    {"name": "strip_right", "base": DEFAULT,
     "set": {"normalizer": {"type": "Strip", "strip_left": False, "strip_right": True}}},
    {"name": "replace_regex_prepend", "base": DEFAULT, "set": {"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Prepend", "prepend": "> "}]}}},
    {"name": "nfkc_lowercase_strip", "base": DEFAULT, "set": {"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True}]}}},
    {"name": "added_token_flags", "base": DEFAULT, "added_tokens_append": [
        added("<L>", 8192, lstrip=True), added("<R>", 8193, rstrip=True), added("<W>", 8194, single_word=True),
        added("ab", 8195), added("abc", 8196), added("bcd", 8197), added("<LR>", 8198, lstrip=True, rstrip=True,
                                                                          special=True)]},
    {"name": "added_tokens_normalized", "base": DEFAULT,
     "set": {"normalizer": {"type": "Lowercase"}},
     "added_tokens_append": [added("Hello", 8192, normalized=True), added("WORLD", 8193, normalized=False),
                             added("Caf\u00e9", 8194, normalized=True, special=True)]},
    {"name": "ignore_merges", "base": DEFAULT, "model_set": {"ignore_merges": True}},
    {"name": "post_bos_eos_sequence", "base": DEFAULT, "set": {"post_processor": {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<|eos|>", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|bos|>": {"id": "<|bos|>", "ids": [0], "tokens": ["<|bos|>"]},
                            "<|eos|>": {"id": "<|eos|>", "ids": [1], "tokens": ["<|eos|>"]}}}]}}},
    # HF's Strip decoder panics when it would strip a token to nothing from both ends, so the stop side
    # is tested alone.
    {"name": "decoder_strip_replace", "base": DEFAULT, "set": {"decoder": {"type": "Sequence", "decoders": [
        {"type": "Strip", "content": "e", "start": 0, "stop": 1},
        {"type": "Strip", "content": "\u0120", "start": 2, "stop": 0},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        {"type": "Replace", "pattern": {"String": "o"}, "content": "0"}]}}},
    {"name": "no_decoder", "base": DEFAULT, "set": {"decoder": None}},
    {"name": "metaspace_always", "base": LLAMA2,
     "set": dict(LLAMA2_METASPACE, pre_tokenizer=metaspace("always"), decoder={"type": "Sequence", "decoders": [
         metaspace("always"), {"type": "ByteFallback"}, {"type": "Fuse"}]})},
    {"name": "metaspace_first", "base": LLAMA2,
     "set": dict(LLAMA2_METASPACE, pre_tokenizer=metaspace("first"), decoder={"type": "Sequence", "decoders": [
         {"type": "ByteFallback"}, {"type": "Fuse"}, metaspace("first")]})},
    {"name": "metaspace_never_nosplit", "base": LLAMA2,
     "set": dict(LLAMA2_METASPACE, pre_tokenizer=metaspace("never", do_split=False), decoder={
         "type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}, metaspace("never")]})},
    {"name": "metaspace_legacy_add_prefix_space", "base": LLAMA2,
     "set": dict(LLAMA2_METASPACE,
                 pre_tokenizer={"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True},
                 decoder={"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True})},
    {"name": "unk_fused", "base": LLAMA2, "model_set": {"byte_fallback": False, "fuse_unk": True}},
    {"name": "unk_not_fused", "base": LLAMA2, "model_set": {"byte_fallback": False, "fuse_unk": False}},
]

VARIANT_STRINGS = [
    "Hello World",
    "",
    " ",
    "\n",
    "  leading spaces",
    "trailing spaces   ",
    "I'm DON'T we'LL",
    "tabs\tand\nnewlines\r\n\r\n",
    "numbers 123 4567890 3.14",
    "punct: a-b--c, (d) [e]! \u00bff? \u00abg\u00bb ~$+",
    "caf\u00e9 CAF\u00c9 cafe\u0301 \ufb01 \uff26\uff55\uff4c\uff4c \u00b2 \u00bd \u2460 deadBEEF",
    "\u0130stanbul \u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 \u00df",
    "\u4e2d\u6587 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4 \u0645\u0631\u062d\u0628\u0627",
    "emoji \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F44D\U0001F3FD",
    "nbsp\u00a0x\u2009y\u3000z \u180e",
    "<|bos|>a<|eos|>b <s>x</s> y",
    "x  <L>  y  <R>  z <LR>  <LR> ",
    "a<W>b a <W> b <W>",
    "abcd xabcdx bcdabc",
    "HELLO hello Hello WORLD world CAF\u00c9 caf\u00e9",
    "\u2581already\u2581metaspace",
    "xxaxxbx",
]


def variant(v: dict) -> dict:
    base = json.loads(load_base(v["base"]))
    j = copy.deepcopy(base)
    for k, val in v.get("set", {}).items():
        j[k] = val
    for k, val in v.get("model_set", {}).items():
        j["model"][k] = val
    j["added_tokens"] = j.get("added_tokens", []) + v.get("added_tokens_append", [])
    tok = Tokenizer.from_str(json.dumps(j))
    out = {k: v[k] for k in ("name", "base", "set", "model_set", "added_tokens_append") if k in v}
    out["cases"] = []
    for s in VARIANT_STRINGS:  # case i is for strings[i]; decoded_skip only where it differs from decoded
        c = encode_case(tok, s)
        if c["decoded_skip"] == c["decoded"]:
            del c["decoded_skip"]
        out["cases"].append(c)
    return out


def write(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in TOKENIZERS.items():
        write(OUT / f"golden_{name}.json", golden(name, spec))
    write(OUT / "components.json", {"strings": VARIANT_STRINGS, "variants": [variant(v) for v in VARIANTS]})


if __name__ == "__main__":
    main()
