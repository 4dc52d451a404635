// The sgemm wrapper against a float64 triple loop, all four transpose cases,
// odd sizes. Tolerance: relative Frobenius error <= 1e-5.
#include "kernels/cpu/blas.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace herd::kernels::cpu {
namespace {

class SgemmTest : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(SgemmTest, MatchesFloat64Reference) {
  auto [ta, tb] = GetParam();
  const int64_t M = 37, N = 111, K = 53;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> A(M * K), B(K * N), C(M * N);
  for (auto& v : A) v = nd(rng);
  for (auto& v : B) v = nd(rng);
  for (auto& v : C) v = nd(rng);
  std::vector<float> C0 = C;
  Sgemm(ta, tb, M, N, K, 0.5f, A.data(), B.data(), 2.0f, C.data());
  double err = 0, ref = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        double a = ta ? A[k * M + i] : A[i * K + k];
        double b = tb ? B[j * K + k] : B[k * N + j];
        s += a * b;
      }
      double want = 0.5 * s + 2.0 * C0[i * N + j];
      err += (C[i * N + j] - want) * (C[i * N + j] - want);
      ref += want * want;
    }
  EXPECT_LE(std::sqrt(err / ref), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, SgemmTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()));

}  // namespace
}  // namespace herd::kernels::cpu

namespace herd::kernels::cpu {
namespace {

// SgemmStrided on sub-matrices of wider buffers (the attention's per-head
// slices): only the addressed block of C changes, and it matches a float64
// triple loop. Tolerance: relative Frobenius error <= 1e-5.
TEST_P(SgemmTest, StridedSubMatricesMatchFloat64Reference) {
  auto [ta, tb] = GetParam();
  const int64_t M = 19, N = 23, K = 13;
  const int64_t lda = (ta ? M : K) + 5, ldb = (tb ? K : N) + 3, ldc = N + 7;
  const int64_t arows = ta ? K : M, brows = tb ? N : K;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  std::vector<float> A(arows * lda), B(brows * ldb), C(M * ldc);
  for (auto& v : A) v = nd(rng);
  for (auto& v : B) v = nd(rng);
  for (auto& v : C) v = nd(rng);
  const std::vector<float> C0 = C;
  SgemmStrided(ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, 1.0f, C.data(), ldc);
  double err = 0, ref = 0;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * lda + i] : A[i * lda + k];
        const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
      }
      const double want = 1.5 * s + C0[i * ldc + j];
      err += (C[i * ldc + j] - want) * (C[i * ldc + j] - want);
      ref += want * want;
    }
    for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], C0[i * ldc + j]);  // untouched
  }
  EXPECT_LE(std::sqrt(err / ref), 1e-5);
}

TEST(SgemmStrided, EmptyInnerDimensionScalesC) {
  std::vector<float> C = {1.0f, 2.0f, 3.0f, 4.0f};
  SgemmStrided(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
  SgemmStrided(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
}

}  // namespace
}  // namespace herd::kernels::cpu
