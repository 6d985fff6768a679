#pragma once
// A fixed pool of worker threads and a blocking parallel_for. The CPU backend splits every GEMM/GEMV
// over output rows and attention over heads with it; one pool per process (default: all cores).
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsa {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads = 0);  // 0: std::thread::hardware_concurrency()
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(begin, end) on disjoint chunks covering [0, n), at least `grain` items per chunk,
    // using the calling thread too. Returns when all chunks are done. Not reentrant.
    void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

    static ThreadPool& global();
    static void set_global_threads(int n_threads);  // call before the first global()

private:
    void worker_loop();
    void run_chunks();

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_start_, cv_done_;
    const std::function<void(size_t, size_t)>* job_ = nullptr;
    size_t n_ = 0, chunk_ = 0, next_ = 0;
    size_t generation_ = 0;
    int busy_ = 0;
    bool stop_ = false;
};

}  // namespace dsa
