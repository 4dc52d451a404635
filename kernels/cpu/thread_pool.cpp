#include "kernels/cpu/thread_pool.h"

namespace herd::kernels::cpu {

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  workers_.reserve(static_cast<size_t>(threads_ - 1));
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { Worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
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
    pending_ = threads_ - 1;
    ++generation_;
  }
  start_cv_.notify_all();
  fn(ctx, 0, n / threads_, 0);
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [this] { return pending_ == 0; });
}

void ThreadPool::Worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    Fn fn;
    void* ctx;
    int64_t n;
    {
      std::unique_lock<std::mutex> l(mu_);
      start_cv_.wait(l, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = fn_;
      ctx = ctx_;
      n = n_;
    }
    const int64_t b = n * index / threads_, e = n * (index + 1) / threads_;
    if (b < e) fn(ctx, b, e, index);
    bool last;
    {
      std::lock_guard<std::mutex> l(mu_);
      last = --pending_ == 0;
    }
    if (last) done_cv_.notify_one();
  }
}

}  // namespace herd::kernels::cpu
