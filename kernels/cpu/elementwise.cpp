#include "kernels/cpu/elementwise.h"

#include "kernels/cpu/reduce.h"

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
  // Float partial sums over blocks of 4096 (vectorised, kLanes-way), folded
  // into a double: the float partials lose nothing that matters for a norm.
  double total = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    const int64_t len = i0 + 4096 < n ? 4096 : n - i0;
    total += Dot(x + i0, x + i0, len);
  }
  return total;
}

}  // namespace herd::kernels::cpu
