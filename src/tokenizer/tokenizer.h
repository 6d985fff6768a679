#pragma once
// Hugging Face tokenizer.json, reimplemented to give ids identical to HF `tokenizers`:
// normalizer -> added-token split -> pre-tokenizer -> BPE model -> post-processor, and the decoder chain.
// Unsupported components are errors naming the component, never a silent fallback.
//
// Supported (see docs/tokenizer.md): model BPE (unk_token, fuse_unk, byte_fallback, ignore_merges; merges
// as "a b" or ["a", "b"]); normalizers Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip;
// pre-tokenizers ByteLevel, Split, Digits, Punctuation, Metaspace, Whitespace, WhitespaceSplit, Sequence;
// decoders ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence; post-processors
// TemplateProcessing, ByteLevel, Sequence; added tokens with single_word / lstrip / rstrip / normalized.
// tokenizer.json's "truncation" and "padding" are batch-encoding options and are ignored: dsa checks
// prompt length against the context itself.
//
// Behaviour worth knowing:
// - Input text must be valid UTF-8 (Rust strings, which HF takes, cannot hold anything else). encode()
//   throws dsa::Error "text is not valid UTF-8: invalid or truncated sequence at byte offset 17
//   (byte 0xC3)", naming the first offending byte; nothing is encoded.
// - decode() follows HF tokenizers 0.23 exactly, including two of its quirks: ids with no vocabulary
//   entry are skipped, and an added token with normalized=true whose normalization changes it (e.g.
//   Llama 2's "<s>", normalized to "▁<s>") is decoded from its normalized form and is not recognised as
//   special, so skip_special_tokens does not drop it.
// - tokenizer_config.json: bos_token / eos_token (a string or {"content": ...}) name bos_id() and eos_id();
//   without them BOS is the special token the post-processor puts first, EOS the one it puts last or
//   else the first special added token named </s>, <|endoftext|>, <|eos|>, <|end_of_text|> or <eos>.
//   add_bos_token / add_eos_token, where present, decide whether encode(add_special_tokens=true) adds
//   BOS / EOS (the post-processor becomes "[BOS] $A [EOS]"), as transformers' LlamaTokenizerFast and
//   llama.cpp do; a flag that is absent keeps what tokenizer.json's post-processor does on that side.
//   (transformers 5 ignores both flags when tokenizer.json exists; the bundled model's files agree
//   either way.)
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsa {

class Tokenizer {
public:
    // tokenizer.json, plus (optional) tokenizer_config.json for add_bos_token / bos / eos.
    // Errors (dsa::Error) name the file: unreadable, malformed JSON, no "model", unsupported component.
    static Tokenizer from_file(const std::filesystem::path& tokenizer_json,
                               const std::filesystem::path& tokenizer_config = {});
    // DIR/tokenizer.json (+ DIR/tokenizer_config.json when present).
    static Tokenizer from_model_dir(const std::filesystem::path& dir);
    // The same from JSON text already in memory; `source` names it in error messages.
    static Tokenizer from_json_text(std::string_view tokenizer_json,
                                    std::string_view tokenizer_config_json = {},
                                    std::string_view source = "tokenizer.json");

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // HF `encode(text, add_special_tokens=...)`. Invalid UTF-8 in `text` is an error (dsa::Error).
    std::vector<int> encode(std::string_view text, bool add_special_tokens = true) const;
    // HF `decode(ids, skip_special_tokens=...)`. Never fails: unknown ids are skipped and invalid byte
    // sequences from byte-level tokens become U+FFFD, as in HF.
    std::string decode(std::span<const int> ids, bool skip_special_tokens = false) const;

    std::string id_to_piece(
        int id) const;  // the vocabulary string of `id` (as stored in tokenizer.json); "" if none
    int piece_to_id(std::string_view piece) const;  // -1 when absent
    int vocab_size() const;                         // largest id + 1, added tokens included
    int bos_id() const;                             // -1 when none
    int eos_id() const;                             // -1 when none
    bool is_special(int id) const;

    struct Impl;

private:
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Incremental detokenization for streaming output: push ids as they are generated and print what each
// push returns. Never returns half a UTF-8 character (byte-fallback runs are held back until complete)
// and strips the Metaspace/SentencePiece leading space exactly where HF decode would.
// Text is decoded with skip_special_tokens=true. The concatenation of every push() and the final
// flush() equals the text decode(context + pushed ids) adds after decode(context) (tested).
class StreamDecoder {
public:
    // `context`: ids already decoded (e.g. the prompt), so the first generated piece is spaced correctly.
    explicit StreamDecoder(const Tokenizer& tok, std::span<const int> context = {});
    std::string push(int id);
    std::string flush();  // whatever is still held back (invalid bytes become U+FFFD, like HF)

private:
    const Tokenizer& tok_;
    std::vector<int> ids_;
    size_t prefix_start_ = 0;  // ids_[prefix_start_, read_) were already turned into text
    size_t read_ = 0;
};

}  // namespace dsa
