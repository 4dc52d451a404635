// LR schedule: warm-up values, peak, cosine and linear shapes (checked
// against their closed forms to 1e-12 relative), the floor at and after
// total_steps, and option errors naming the field.
#include "workers/train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace herd::train {
namespace {

TEST(LrSchedule, WarmupThenCosineToFloor) {
  LrScheduleOptions o;
  o.peak_lr = 1e-3;
  o.warmup_steps = 10;
  o.total_steps = 110;
  o.min_lr_ratio = 0.1;
  auto s = LrSchedule::Create(o);
  ASSERT_TRUE(s.ok());
  EXPECT_NEAR(s->At(0), 1e-4, 1e-15);
  EXPECT_NEAR(s->At(4), 5e-4, 1e-15);
  EXPECT_NEAR(s->At(9), 1e-3, 1e-15);
  EXPECT_NEAR(s->At(10), 1e-3, 1e-15);
  EXPECT_NEAR(s->At(60), 0.5 * (1e-3 + 1e-4), 1e-15);  // cosine midpoint
  const double p = 30.0 / 100.0;
  EXPECT_NEAR(s->At(40), 1e-4 + 0.9e-3 * 0.5 * (1 + std::cos(std::numbers::pi * p)), 1e-15);
  EXPECT_NEAR(s->At(110), 1e-4, 1e-15);
  EXPECT_NEAR(s->At(100000), 1e-4, 1e-15);  // never below the floor
  for (int64_t t = 10; t < 120; ++t) EXPECT_LE(s->At(t + 1), s->At(t) + 1e-18);
}

TEST(LrSchedule, LinearDecay) {
  LrScheduleOptions o;
  o.peak_lr = 2.0;
  o.warmup_steps = 0;
  o.total_steps = 4;
  o.decay = LrScheduleOptions::Decay::kLinear;
  o.min_lr_ratio = 0.5;
  auto s = LrSchedule::Create(o);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->At(0), 2.0);
  EXPECT_DOUBLE_EQ(s->At(1), 1.75);
  EXPECT_DOUBLE_EQ(s->At(2), 1.5);
  EXPECT_DOUBLE_EQ(s->At(4), 1.0);
  EXPECT_DOUBLE_EQ(s->At(9), 1.0);
}

TEST(LrSchedule, BadOptionsNameTheField) {
  auto field_of = [](LrScheduleOptions o) { return LrSchedule::Create(o).status().message(); };
  LrScheduleOptions o;
  o.peak_lr = 0;
  EXPECT_NE(field_of(o).find("peak_lr"), std::string::npos);
  o = {};
  o.warmup_steps = 1000;
  EXPECT_NE(field_of(o).find("total_steps"), std::string::npos);
  o = {};
  o.min_lr_ratio = 0.0;  // a zero floor is refused
  EXPECT_NE(field_of(o).find("min_lr_ratio"), std::string::npos);
  o = {};
  o.warmup_steps = -1;
  EXPECT_NE(field_of(o).find("warmup_steps"), std::string::npos);
}

}  // namespace
}  // namespace herd::train
