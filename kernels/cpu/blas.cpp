#include "kernels/cpu/blas.h"

#include <cblas.h>

namespace herd::kernels::cpu {

void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           const float* B, float beta, float* C) {
  const int64_t lda = trans_a ? M : K;
  const int64_t ldb = trans_b ? K : N;
  SgemmStrided(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
}

void SgemmStrided(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    // BLAS leaves C * beta; do the same explicitly so callers can rely on it.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
              C, static_cast<int>(ldc));
}

int SetBlasThreads(int n) {
  int prev = openblas_get_num_threads();
  if (n > 0) openblas_set_num_threads(n);
  return prev;
}

}  // namespace herd::kernels::cpu
