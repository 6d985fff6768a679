#pragma once
// tokenizer.json "post_processor" for a single sequence with add_special_tokens=true:
// TemplateProcessing (its "single" template), ByteLevel (changes only offsets, so no ids), Sequence.
#include <memory>
#include <vector>

#include "tokenizer/json_fields.h"

namespace dsa::tok {

class PostProcessor {
public:
    virtual ~PostProcessor() = default;
    virtual void process(std::vector<int>& ids) const = 0;
};

// Throws dsa::Error naming the type for an unsupported post-processor.
std::unique_ptr<PostProcessor> make_post_processor(const json& spec);

// The template "[bos] $A [eos]" (either part optional; ids < 0 mean absent), which transformers'
// LlamaTokenizerFast builds from add_bos_token / add_eos_token.
std::unique_ptr<PostProcessor> make_bos_eos_processor(int bos_id, int eos_id);

}  // namespace dsa::tok
