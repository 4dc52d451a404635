#pragma once
// The one pool of worker threads for our own CPU loops (element-wise ops and
// attention in training, paged attention and batch-invariant linears in
// generation), created once (model or generator construction) and reused,
// so a step never creates threads or allocates. For() runs while OpenBLAS
// is idle: callers that issue sgemm inside For() first drop OpenBLAS to one
// thread (see attention.cpp), so the two pools never compete for the same
// cores.
//
// A call hands the workers a function pointer and a context pointer to the
// caller's callable: no allocation per call (decode makes ~70 a step).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace herd::kernels::cpu {

class ThreadPool {
 public:
  // threads: total, including the calling thread; 1 = run inline.
  // spin: how long an idle worker busy-waits for the next call before it
  // sleeps, and whether the caller busy-waits for the workers (spin > 0) or
  // sleeps (spin = 0). Worth it where calls come back to back, as in decode:
  // a condition-variable wake costs tens of µs. Default: 0 (sleep at once).
  explicit ThreadPool(int threads, std::chrono::microseconds spin = std::chrono::microseconds(0));
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // fn(begin, end, thread) over a static split of [0, n) into size()
  // contiguous chunks (thread 0 is the caller). Returns when all are done.
  // One call at a time per pool (the owner's step is sequential). fn must
  // not throw.
  template <class F>
  void For(int64_t n, F&& fn) {
    using G = std::remove_reference_t<F>;
    Run(n, &Call<G>, const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // fn(part, parts) for part = 0 .. parts-1 with parts = size(), one part
  // per thread (part 0 on the caller): for kernels that split their own work
  // so the split depends on the thread count alone, never on n.
  template <class F>
  void ForEachPart(F&& fn) {
    const int parts = threads_;
    For(parts, [&fn, parts](int64_t begin, int64_t end, int) {
      for (int64_t p = begin; p < end; ++p) fn(static_cast<int>(p), parts);
    });
  }

 private:
  using Fn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  template <class F>
  static void Call(void* ctx, int64_t b, int64_t e, int t) {
    (*static_cast<F*>(ctx))(b, e, t);  // F may be const: a const call
  }
  void Run(int64_t n, Fn fn, void* ctx);
  void Worker(int index);

  const int threads_;
  const std::chrono::microseconds spin_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};  // bumped under mu_ for each call and at stop
  std::atomic<int> pending_{0};          // workers still running the current call
  bool stop_ = false;                    // guarded by mu_
  Fn fn_ = nullptr;                      // guarded by mu_
  void* ctx_ = nullptr;                  // guarded by mu_
  int64_t n_ = 0;                        // guarded by mu_
};

// Runs fn over [0, n) on pool when one is given and every thread would get
// at least min_chunk items (a hand-off costs microseconds, more than a small
// loop), else inline as one chunk. Default min_chunk: 1.
template <class F>
void ParallelFor(ThreadPool* pool, int64_t n, F&& fn, int64_t min_chunk = 1) {
  if (pool != nullptr && pool->size() > 1 && n > 1 && n >= min_chunk * pool->size()) {
    pool->For(n, fn);
  } else {
    fn(int64_t{0}, n, 0);
  }
}

}  // namespace herd::kernels::cpu
