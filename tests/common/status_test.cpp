#include "common/status.h"

#include <gtest/gtest.h>

namespace herd {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("x: must be even, got " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  HERD_ASSIGN_OR_RETURN(int h, Half(x));
  HERD_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::NotFound("tensor 'lm_head.weight'").WithContext("model.safetensors");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "NotFound: model.safetensors: tensor 'lm_head.weight'");
}

TEST(Result, PropagatesTheFirstError) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);  // 6/2 = 3 is odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "x: must be even, got 3");
}

}  // namespace
}  // namespace herd
