#pragma once
// Vectorisable reductions. Without -ffast-math GCC will not reorder a
// float sum or max, so a plain `s += x[i]` loop runs one add at a time;
// these keep kLanes independent partial results (one SIMD register's
// worth), which GCC turns into vector code, then fold them. The summation
// order is fixed by n alone, so results stay deterministic.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/fast_exp.h"

namespace herd::kernels::cpu {

inline constexpr int64_t kLanes = 16;

inline float FoldSum(const float* acc) {
  float s = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// max_j x[j]; n >= 1.
inline float MaxOf(const float* __restrict x, int64_t n) {
  float acc[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) acc[l] = x[0];
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] = acc[l] > x[j + l] ? acc[l] : x[j + l];
  float m = acc[0];
  for (int64_t l = 1; l < kLanes; ++l) m = std::max(m, acc[l]);
  for (; j < n; ++j) m = std::max(m, x[j]);
  return m;
}

// sum_j x[j] * y[j]
inline float Dot(const float* __restrict x, const float* __restrict y, int64_t n) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += x[j + l] * y[j + l];
  float s = FoldSum(acc);
  for (; j < n; ++j) s += x[j] * y[j];
  return s;
}

// x[j] <- exp(x[j] - shift); returns the sum of the new x.
inline float ExpShiftSum(float* __restrict x, int64_t n, float shift) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const float e = FastExp(x[j + l] - shift);
      x[j + l] = e;
      acc[l] += e;
    }
  float s = FoldSum(acc);
  for (; j < n; ++j) {
    x[j] = FastExp(x[j] - shift);
    s += x[j];
  }
  return s;
}

// sum_j exp(x[j] - shift), x unchanged.
inline float ExpShiftSumConst(const float* __restrict x, int64_t n, float shift) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += FastExp(x[j + l] - shift);
  float s = FoldSum(acc);
  for (; j < n; ++j) s += FastExp(x[j] - shift);
  return s;
}

}  // namespace herd::kernels::cpu
