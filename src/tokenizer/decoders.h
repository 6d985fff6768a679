#pragma once
// tokenizer.json "decoder": ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence. Each
// rewrites the list of token strings (HF decode_chain); decode joins the final list.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_fields.h"

namespace dsa::tok {

class Decoder {
public:
    virtual ~Decoder() = default;
    virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Throws dsa::Error naming the type for an unsupported decoder.
std::unique_ptr<Decoder> make_decoder(const json& spec);

}  // namespace dsa::tok
