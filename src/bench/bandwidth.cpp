#include "bench/bandwidth.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "util/thread_pool.h"
#include "util/timer.h"

namespace dsa {

double measure_host_copy_gbs() {
    constexpr size_t kBytes = size_t{256} << 20;
    constexpr size_t kGrain = size_t{4} << 20;  // 4 MiB per task: 64 tasks, enough to balance any pool
    constexpr int kReps = 7;
    std::unique_ptr<char[]> src(new char[kBytes]), dst(new char[kBytes]);
    ThreadPool& pool = ThreadPool::global();
    // First touch commits both buffers, so no copy below pays for page faults.
    pool.parallel_for(kBytes, kGrain, [&](size_t b, size_t e) {
        std::memset(src.get() + b, 1, e - b);
        std::memset(dst.get() + b, 0, e - b);
    });
    std::vector<double> ms;
    for (int i = 0; i <= kReps; ++i) {
        const double t0 = now_ms();
        pool.parallel_for(kBytes, kGrain,
                          [&](size_t b, size_t e) { std::memcpy(dst.get() + b, src.get() + b, e - b); });
        const double t = now_ms() - t0;
        if (i > 0) ms.push_back(t);  // the first copy is the warm-up
    }
    std::sort(ms.begin(), ms.end());
    const double median_ms = ms[ms.size() / 2];
    return 2.0 * static_cast<double>(kBytes) / (median_ms * 1e6);
}

double startup_bandwidth_gbs(Backend& backend) {
    const double gbs = backend.measure_bandwidth_gbs();
    if (gbs > 0) return gbs;
    if (backend.name() == "cpu") return measure_host_copy_gbs();
    return 0.0;
}

}  // namespace dsa
