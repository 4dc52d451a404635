#include "kernels/cpu/thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace herd::kernels::cpu {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads, std::chrono::microseconds spin)
    : threads_(threads < 1 ? 1 : threads), spin_(spin) {
  workers_.reserve(static_cast<size_t>(threads_ - 1));
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { Worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Run(int64_t n, Fn fn, void* ctx) {
  if (threads_ == 1 || n <= 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  fn(ctx, 0, n / threads_, 0);
  if (spin_.count() > 0) {
    // Spin, then yield: on a busy box a worker may be waiting for a core.
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 4096) {
        CpuRelax();
      } else {
        std::this_thread::yield();
      }
    }
    return;
  }
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::Worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    if (spin_.count() > 0) {
      // Busy-wait briefly for the next call before sleeping.
      const auto until = std::chrono::steady_clock::now() + spin_;
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until) {
        CpuRelax();
      }
    }
    Fn fn;
    void* ctx;
    int64_t n;
    {
      std::unique_lock<std::mutex> l(mu_);
      start_cv_.wait(l, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      fn = fn_;
      ctx = ctx_;
      n = n_;
    }
    const int64_t b = n * index / threads_, e = n * (index + 1) / threads_;
    if (b < e) fn(ctx, b, e, index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1 && spin_.count() == 0) {
      // Taking the lock orders this wake after the caller's predicate check,
      // so the caller cannot miss it.
      std::lock_guard<std::mutex> l(mu_);
      done_cv_.notify_one();
    }
  }
}

}  // namespace herd::kernels::cpu
