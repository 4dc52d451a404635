// Runs on a machine with a CUDA device; elsewhere it skips and says why.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cuda/runtime.h"

namespace herd::cuda {
namespace {

TEST(CudaSmoke, SaxpyMatchesHost) {
  std::string why;
  if (DeviceCount(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  const int n = 1000003;  // odd, not a multiple of the block size
  std::vector<float> x(n), y(n), want(n);
  for (int i = 0; i < n; ++i) {
    x[i] = 0.001f * static_cast<float>(i % 977);
    y[i] = 1.0f - 0.002f * static_cast<float>(i % 431);
    want[i] = 2.5f * x[i] + y[i];
  }
  Status s = Saxpy(n, 2.5f, x.data(), y.data());
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < n; ++i) ASSERT_NEAR(y[i], want[i], 1e-5f) << "at " << i;
}

TEST(CudaSmoke, LibrariesLinked) {
  std::string v = LinkedLibraryVersions();
  EXPECT_FALSE(v.empty());
  RecordProperty("versions", v);
}

}  // namespace
}  // namespace herd::cuda
