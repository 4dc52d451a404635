#include "kernels/cpu/elementwise.h"

namespace herd::kernels::cpu {

void AddInPlace(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void Add(float* __restrict out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void Scale(float* y, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

double SumSquares(const float* x, int64_t n) {
  // Blocks of float partial sums folded into a double: vectorises, and the
  // float partials over 1024 values lose nothing that matters for a norm.
  double total = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += 1024) {
    const int64_t i1 = i0 + 1024 < n ? i0 + 1024 : n;
    float s = 0.0f;
    for (int64_t i = i0; i < i1; ++i) s += x[i] * x[i];
    total += s;
  }
  return total;
}

}  // namespace herd::kernels::cpu
