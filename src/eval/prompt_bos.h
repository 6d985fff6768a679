#pragma once
// The BOS id the eval commands start every prompt and window with: the one the tokenizer itself puts
// first when it encodes with special tokens (tokenizer_config.json's add_bos_token or the post-processor),
// as llama.cpp decides from the vocabulary's add_bos flag. -1 when the tokenizer adds none (e.g. Qwen2).
namespace dsa {

class Tokenizer;

int prompt_bos(const Tokenizer& tok);

}  // namespace dsa
