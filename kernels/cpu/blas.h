#pragma once
// Thin, row-major wrappers over OpenBLAS. Shapes in comments are (rows, cols).
#include <cstdint>

namespace herd::kernels::cpu {

// C(M,N) = alpha * op(A) op(B) + beta * C, row-major; op = transpose when
// trans_a / trans_b. lda/ldb/ldc default to the packed leading dimension.
void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           const float* B, float beta, float* C);

// As Sgemm with explicit leading dimensions (row strides in floats), for
// sub-matrices such as one head's columns of a (tokens, H*hd) activation.
// lda >= cols of the stored A (K, or M when trans_a), likewise ldb; ldc >= N.
void SgemmStrided(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc);

// Threads OpenBLAS may use (0 = its default). Returns the previous value.
int SetBlasThreads(int n);

}  // namespace herd::kernels::cpu
