#pragma once
// tokenizer.json "model" of type BPE: vocab + ranked merges (either "a b" strings or ["a", "b"] pairs),
// unk_token, fuse_unk, byte_fallback (<0xXX> tokens), ignore_merges. Each pre-tokenized word is split
// into characters and merged lowest-rank-first (ties: leftmost) with a priority queue, as HF does.
// Repeated words are served from a cache.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_fields.h"

namespace dsa::tok {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int, StringHash, std::equal_to<>>;

class BpeModel {
public:
    // Throws dsa::Error for a malformed or unsupported model section.
    explicit BpeModel(const json& spec);

    // Appends the ids for one pre-tokenized word.
    void tokenize(std::string_view word, std::vector<int>& ids) const;

    int token_to_id(std::string_view token) const;
    const std::string* id_to_token(int id) const;  // nullptr when the id has no vocabulary entry
    int max_id() const { return static_cast<int>(id_to_token_.size()) - 1; }
    int vocab_count() const { return static_cast<int>(vocab_.size()); }  // entries, which HF calls its size

private:
    struct Merge {
        uint32_t rank;
        int new_id;
    };
    static uint64_t pair_key(int a, int b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    // Open-addressing table (pair of ids -> merge): the merge loop's hottest lookup, ~2x faster than
    // std::unordered_map for a word of 500K symbols (SentencePiece-style files have no pre-tokenizer,
    // so a whole prompt is one word).
    class MergeTable {
    public:
        void reserve(size_t n);
        void insert_or_assign(uint64_t key, Merge m);
        const Merge* find(uint64_t key) const {
            for (size_t i = slot(key);; i = (i + 1) & mask_) {
                if (keys_[i] == key) return &values_[i];
                if (keys_[i] == kEmpty) return nullptr;
            }
        }

    private:
        static constexpr uint64_t kEmpty = ~uint64_t{0};  // the pair (-1, -1), never a real one
        size_t slot(uint64_t key) const {
            return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
        }
        std::vector<uint64_t> keys_;
        std::vector<Merge> values_;
        size_t mask_ = 0;
        int shift_ = 64;
    };
    struct Symbol {
        int id;
        int prev, next;  // -1 at the ends
        bool removed;
    };
    void merge_word(std::string_view word, std::vector<int>& ids) const;
    template <typename Queue>
    void apply_merges(std::vector<Symbol>& symbols, Queue& queue) const;
    // Words longer than this use a queue with one bucket per merge rank; its setup costs 40 bytes per
    // rank (2.4 MB for Llama 2's 61K merges), small next to the merging of 2K+ symbols. The golden
    // tests' 4 KB book excerpts are single words for Llama 2, so both queues are tested.
    static constexpr size_t kBucketQueueMinSymbols = 2048;

    TokenMap vocab_;
    std::vector<std::string> id_to_token_;
    std::vector<char> has_id_;
    MergeTable merges_;
    std::vector<int> rank_new_id_;  // the token each merge rank makes
    std::string unk_token_;         // empty: no unk token, unknown characters are dropped (as HF does)
    bool fuse_unk_ = false;
    bool byte_fallback_ = false;
    bool ignore_merges_ = false;
    int byte_ids_[256];  // id of "<0xXX>" or -1

    // Words up to 256 bytes are cached (as HF does); ~50 bytes of key + ids per entry, so 200K entries
    // bound the cache near 20 MB.
    static constexpr size_t kCacheCapacity = 200000;
    static constexpr size_t kMaxCachedWord = 256;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>> cache_;
};

}  // namespace dsa::tok
