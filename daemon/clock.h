#pragma once
// Injected time and randomness (Envoy style): the scheduler and orchestrator
// never read the wall clock or a global RNG directly, so tests can drive
// lease expiry and id generation deterministically.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace herd::daemon {

using Millis = int64_t;  // milliseconds since the Unix epoch

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(Millis start = 1'700'000'000'000) : now_(start) {}
  Millis NowMs() const override { return now_.load(); }
  void Advance(Millis ms) { now_ += ms; }

 private:
  std::atomic<Millis> now_;
};

// Random ids: 128 bits as 32 lowercase hex characters. Thread-safe.
class IdSource {
 public:
  virtual ~IdSource() = default;
  virtual std::string NewId() = 0;
};

class RandomIdSource final : public IdSource {
 public:
  // seed 0 = from std::random_device. Default: 0
  explicit RandomIdSource(uint64_t seed = 0)
      : rng_(seed ? seed : (static_cast<uint64_t>(std::random_device{}()) << 32) ^
                               std::random_device{}()) {}
  std::string NewId() override {
    std::lock_guard<std::mutex> l(mu_);
    static const char* kHex = "0123456789abcdef";
    std::string s(32, '0');
    for (int w = 0; w < 2; ++w) {
      uint64_t x = rng_();
      for (int i = 0; i < 16; ++i) s[w * 16 + i] = kHex[(x >> (4 * i)) & 0xf];
    }
    return s;
  }

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace herd::daemon
