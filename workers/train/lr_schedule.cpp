#include "workers/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace herd::train {

Result<LrSchedule> LrSchedule::Create(const LrScheduleOptions& o) {
  auto bad = [](const char* f, const char* why) {
    return Status::InvalidArgument(std::string("lr schedule: field '") + f + "' " + why);
  };
  if (!(o.peak_lr > 0.0) || !std::isfinite(o.peak_lr)) return bad("peak_lr", "must be positive");
  if (o.warmup_steps < 0) return bad("warmup_steps", "must be >= 0");
  if (o.total_steps <= o.warmup_steps) return bad("total_steps", "must exceed warmup_steps");
  if (!(o.min_lr_ratio > 0.0 && o.min_lr_ratio <= 1.0))
    return bad("min_lr_ratio", "must be in (0, 1]");
  return LrSchedule(o);
}

double LrSchedule::At(int64_t step) const {
  const double peak = o_.peak_lr, floor = o_.peak_lr * o_.min_lr_ratio;
  if (step < 0) step = 0;
  if (step < o_.warmup_steps)
    return peak * static_cast<double>(step + 1) / static_cast<double>(o_.warmup_steps);
  const double p = std::clamp(static_cast<double>(step - o_.warmup_steps) /
                                  static_cast<double>(o_.total_steps - o_.warmup_steps),
                              0.0, 1.0);
  const double shape = o_.decay == LrScheduleOptions::Decay::kCosine
                           ? 0.5 * (1.0 + std::cos(std::numbers::pi * p))
                           : 1.0 - p;
  return floor + (peak - floor) * shape;
}

}  // namespace herd::train
