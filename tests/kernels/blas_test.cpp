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
