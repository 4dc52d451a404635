#pragma once
// A fixed set of helper threads that run the `parts` of one data-parallel
// call (part 0 on the calling thread). The generation engine uses it for its
// own kernels (paged attention, batch-invariant linears); it never runs while
// OpenBLAS computes, so the two pools do not compete for the cores.
//
// Run() takes any callable by reference through a function pointer and a
// context pointer: no allocation per call (decode calls it ~70 times a step).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace herd::generate {

class WorkerPool {
 public:
  // threads: total parallelism including the caller. Default 2 (the box).
  explicit WorkerPool(int threads = 2);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return threads_; }

  // Calls fn(part, parts) for part = 0 .. parts-1, parts = threads(), and
  // returns when all are done. fn must not throw.
  template <typename F>
  void Run(F& fn) {
    if (helpers_.empty()) {
      fn(0, 1);
      return;
    }
    Dispatch(&Trampoline<F>, &fn);
  }

 private:
  using RawFn = void (*)(void* ctx, int part, int parts);
  template <typename F>
  static void Trampoline(void* ctx, int part, int parts) {
    (*static_cast<F*>(ctx))(part, parts);
  }
  void Dispatch(RawFn fn, void* ctx);
  void Loop(int part);

  const int threads_;
  std::vector<std::thread> helpers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  RawFn fn_ = nullptr;
  void* ctx_ = nullptr;
  bool stop_ = false;
};

}  // namespace herd::generate
