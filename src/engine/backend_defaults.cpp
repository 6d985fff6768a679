// Default implementations of the optional Backend operations: a clear error naming the backend.
#include "engine/backend.h"
#include "util/error.h"

namespace dsa {

void Backend::set_attention(const AttentionPolicy& policy, bool collect_recall) {
    throw Error("the {} backend cannot change its attention policy", name());
}

void Backend::copy_sequence(const Sequence& src, Sequence& dst) {
    throw Error("the {} backend cannot copy sequences", name());
}

}  // namespace dsa
