#include "util/thread_pool.h"

#include <algorithm>
#include <memory>

namespace dsa {

namespace {
int g_requested_threads = 0;
}

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
}

ThreadPool& ThreadPool::global() {
    static ThreadPool pool(g_requested_threads);
    return pool;
}

void ThreadPool::set_global_threads(int n_threads) { g_requested_threads = n_threads; }

void ThreadPool::run_chunks() {
    for (;;) {
        size_t begin;
        {
            std::lock_guard lock(mu_);
            if (next_ >= n_) return;
            begin = next_;
            next_ += chunk_;
        }
        (*job_)(begin, std::min(n_, begin + chunk_));
    }
}

void ThreadPool::worker_loop() {
    size_t seen = 0;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            ++busy_;
        }
        run_chunks();
        {
            std::lock_guard lock(mu_);
            --busy_;
        }
        cv_done_.notify_one();
    }
}

void ThreadPool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
    if (n == 0) return;
    grain = std::max<size_t>(grain, 1);
    const size_t parts = std::min<size_t>(static_cast<size_t>(size()) * 4, (n + grain - 1) / grain);
    if (parts <= 1 || workers_.empty()) {
        fn(0, n);
        return;
    }
    {
        std::lock_guard lock(mu_);
        job_ = &fn;
        n_ = n;
        chunk_ = (n + parts - 1) / parts;
        next_ = 0;
        ++generation_;
    }
    cv_start_.notify_all();
    run_chunks();
    std::unique_lock lock(mu_);
    cv_done_.wait(lock, [&] { return busy_ == 0 && next_ >= n_; });
    job_ = nullptr;
}

}  // namespace dsa
