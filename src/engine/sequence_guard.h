#pragma once
// A fresh sequence whose pages go back to the backend however the scope ends, so one failed or finished
// run, trial or window leaves the backend ready for the next.
#include "engine/backend.h"

namespace dsa {

class SequenceGuard {
public:
    explicit SequenceGuard(Backend& backend) : backend_(backend) {}
    ~SequenceGuard() { backend_.release(seq_); }
    SequenceGuard(const SequenceGuard&) = delete;
    SequenceGuard& operator=(const SequenceGuard&) = delete;
    Sequence& seq() { return seq_; }

private:
    Backend& backend_;
    Sequence seq_;
};

}  // namespace dsa
