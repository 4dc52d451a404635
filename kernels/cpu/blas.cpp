#include "kernels/cpu/blas.h"

#include <cblas.h>

namespace herd::kernels::cpu {

void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, const float* B, float beta, float* C) {
  const int64_t lda = trans_a ? M : K;
  const int64_t ldb = trans_b ? K : N;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
              C, static_cast<int>(N));
}

int SetBlasThreads(int n) {
  int prev = openblas_get_num_threads();
  if (n > 0) openblas_set_num_threads(n);
  return prev;
}

}  // namespace herd::kernels::cpu
