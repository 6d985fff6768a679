#include "eval/prompt_bos.h"

#include "tokenizer/tokenizer.h"

namespace dsa {

int prompt_bos(const Tokenizer& tok) {
    const int bos = tok.bos_id();
    if (bos < 0) return -1;
    const std::vector<int> ids = tok.encode("", true);
    return !ids.empty() && ids.front() == bos ? bos : -1;
}

}  // namespace dsa
