#pragma once
// A fixed set of worker threads for the element-wise and attention loops,
// created once (model construction) and reused, so a step never creates
// threads or allocates. For() runs while OpenBLAS is idle: callers that
// issue sgemm inside For() first drop OpenBLAS to one thread (see
// attention.cpp), so the two pools never compete for the same cores.
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
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // fn(begin, end, thread) over a static split of [0, n) into size()
  // contiguous chunks (thread 0 is the caller). Returns when all are done.
  // One For() at a time per pool (the owning model's step is sequential).
  template <class F>
  void For(int64_t n, F&& fn) {
    using G = std::remove_reference_t<F>;
    Run(n, &Call<G>, const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Fn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  template <class F>
  static void Call(void* ctx, int64_t b, int64_t e, int t) {
    (*static_cast<F*>(ctx))(b, e, t);  // F may be const: a const call
  }
  void Run(int64_t n, Fn fn, void* ctx);
  void Worker(int index);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t generation_ = 0;  // guarded by mu_
  int pending_ = 0;          // guarded by mu_
  bool stop_ = false;        // guarded by mu_
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
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
