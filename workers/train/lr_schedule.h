#pragma once
// Learning-rate schedule: linear warm-up to the peak, then cosine or linear
// decay to a floor (never zero) at total_steps, and the floor after that.
#include <cstdint>

#include "common/status.h"

namespace herd::train {

struct LrScheduleOptions {
  enum class Decay { kCosine, kLinear };
  double peak_lr = 1e-5;         // Default: 1e-5 (Llama 3 SFT / DPO)
  int64_t warmup_steps = 0;      // Default: 0; step s < warmup gets peak*(s+1)/warmup
  int64_t total_steps = 1000;    // Default: 1000; decay ends here (> warmup_steps)
  Decay decay = Decay::kCosine;  // Default: cosine
  double min_lr_ratio = 0.1;     // Default: 0.1; floor = peak_lr * ratio, in (0, 1]
};

class LrSchedule {
 public:
  // InvalidArgument naming the field for a non-positive peak, negative
  // warm-up, total_steps <= warmup_steps, or a ratio outside (0, 1].
  static Result<LrSchedule> Create(const LrScheduleOptions& o);
  // Learning rate of optimizer step `step` (0-based).
  double At(int64_t step) const;
  const LrScheduleOptions& options() const { return o_; }

 private:
  explicit LrSchedule(const LrScheduleOptions& o) : o_(o) {}
  LrScheduleOptions o_;
};

}  // namespace herd::train
