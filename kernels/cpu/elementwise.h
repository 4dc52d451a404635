#pragma once
// Small vector helpers shared by the model's forward and backward passes.
#include <cstdint>

namespace herd::kernels::cpu {

// y(n) += x(n)   (residual connections, gradient fan-in)
void AddInPlace(float* y, const float* x, int64_t n);

// out(n) = a(n) + b(n)
void Add(float* out, const float* a, const float* b, int64_t n);

// y(n) *= s
void Scale(float* y, float s, int64_t n);

// Sum of squares in float64 (global gradient norm).
double SumSquares(const float* x, int64_t n);

}  // namespace herd::kernels::cpu
