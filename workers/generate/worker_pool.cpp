#include "workers/generate/worker_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace herd::generate {
namespace {
inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}
// A helper spins this long after a call before sleeping: decode issues
// calls back to back, and a condition-variable wake costs tens of µs.
constexpr auto kSpin = std::chrono::microseconds(200);
}  // namespace

WorkerPool::WorkerPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int p = 1; p < threads_; ++p) helpers_.emplace_back([this, p] { Loop(p); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : helpers_) t.join();
}

void WorkerPool::Dispatch(RawFn fn, void* ctx) {
  const int parts = threads();
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = fn;
    ctx_ = ctx;
    pending_.store(parts - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  fn(ctx, 0, parts);
  // Spin, then yield: on a busy box the helper may be waiting for a core.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) CpuRelax();
    else std::this_thread::yield();
  }
}

void WorkerPool::Loop(int part) {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly for the next call, then sleep on the condition variable.
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (generation_.load(std::memory_order_acquire) == seen &&
           std::chrono::steady_clock::now() < until)
      CpuRelax();
    RawFn fn;
    void* ctx;
    {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      fn = fn_;
      ctx = ctx_;
    }
    fn(ctx, part, threads());
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace herd::generate
