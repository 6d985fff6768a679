#pragma once
// Hugging Face tokenizer.json, reimplemented to give ids identical to HF `tokenizers`:
// normalizer -> added-token split -> pre-tokenizer -> BPE model -> post-processor, and the decoder chain.
// Unsupported components are errors naming the component, never a silent fallback.
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
    static Tokenizer from_file(const std::filesystem::path& tokenizer_json,
                               const std::filesystem::path& tokenizer_config = {});
    // DIR/tokenizer.json (+ DIR/tokenizer_config.json when present).
    static Tokenizer from_model_dir(const std::filesystem::path& dir);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // HF `encode(text, add_special_tokens=...)`. Invalid UTF-8 in `text` is an error (dsa::Error).
    std::vector<int> encode(std::string_view text, bool add_special_tokens = true) const;
    // HF `decode(ids, skip_special_tokens=...)`.
    std::string decode(std::span<const int> ids, bool skip_special_tokens = false) const;

    std::string id_to_piece(int id) const;  // the vocabulary string of `id` (as stored in tokenizer.json)
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
