#pragma once
// tokenizer.json "normalizer": Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip.
// Only the normalized text matters for ids, so alignments to the original text are not tracked.
#include <memory>
#include <string>

#include "tokenizer/json_fields.h"

namespace dsa::tok {

class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::string& text) const = 0;
};

// Throws dsa::Error naming the type for an unsupported normalizer.
std::unique_ptr<Normalizer> make_normalizer(const json& spec);

}  // namespace dsa::tok
