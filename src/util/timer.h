#pragma once
#include <chrono>

namespace dsa {

// Milliseconds since an arbitrary fixed point (steady clock).
inline double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace dsa
