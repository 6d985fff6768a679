#pragma once
// The memory bandwidth bench rows are compared against, measured once at start-up with a copy (GB/s
// counting bytes read + written, as the CUDA samples and llama.cpp's reports count a copy).
#include "engine/backend.h"

namespace dsa {

// Host memory: a 256 MiB buffer copied by every thread of the global pool (the CPU backend reads its
// weights with the same threads), median of 7 copies after a warm-up. 256 MiB is far past any L3 cache.
double measure_host_copy_gbs();

// The backend's own measurement (Backend::measure_bandwidth_gbs), else the host copy for the cpu backend,
// whose weights and cache are host memory; 0 when neither applies (% BW is then left empty).
double startup_bandwidth_gbs(Backend& backend);

}  // namespace dsa
