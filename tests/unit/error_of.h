#pragma once
// Runs fn and returns the message of the dsa::Error it throws ("" when it throws nothing), so bad-input
// tests can assert the exact line a user would see.
#include <string>

#include "util/error.h"

namespace dsa::test {

template <typename Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace dsa::test
