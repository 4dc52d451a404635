// SaxpyMatchesHost runs on a machine with a CUDA device and elsewhere skips
// and says why; LibrariesLinked needs only a CUDA build.
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

// No device needed: the cuBLAS, NCCL and CUDA runtime libraries loaded at
// run time must be the versions whose headers kernels/cuda was compiled with.
TEST(CudaSmoke, LibrariesLinked) {
#if !defined(HERD_HAVE_CUDA)
  GTEST_SKIP() << "built without CUDA (-DHERD_CUDA=OFF or no nvcc): no cuBLAS or NCCL to check";
#else
  Result<LibraryVersions> r = GetLibraryVersions();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const LibraryVersions& v = r.value();
  EXPECT_GT(v.cublas_header[0], 0);
  EXPECT_EQ(v.cublas_linked[0], v.cublas_header[0]) << "cuBLAS major";
  EXPECT_EQ(v.cublas_linked[1], v.cublas_header[1]) << "cuBLAS minor";
  EXPECT_EQ(v.cublas_linked[2], v.cublas_header[2]) << "cuBLAS patch";
  EXPECT_GT(v.nccl_header, 0);
  EXPECT_EQ(v.nccl_linked, v.nccl_header) << "NCCL (NCCL_VERSION_CODE)";
  EXPECT_GT(v.cudart_header, 0);
  EXPECT_EQ(v.cudart_linked, v.cudart_header) << "CUDA runtime (CUDART_VERSION)";
  const std::string linked = LinkedLibraryVersions();
  EXPECT_NE(linked.find("NCCL " + std::to_string(v.nccl_linked)), std::string::npos) << linked;
  RecordProperty("versions", linked);
#endif
}

}  // namespace
}  // namespace herd::cuda
