#pragma once
// expf that GCC auto-vectorises (no libm call, no branches), for the
// softmax / SiLU / cross-entropy loops. Range reduction x = n*ln2 + r with
// |r| <= ln2/2, then a degree-6 Taylor polynomial for e^r (truncation error
// r^7/7! < 1.3e-7 relative, about 1 ulp) and 2^n built from the exponent
// bits. Inputs below -87.3 give 0 (so -inf works), above 88.7 give +inf-ish
// clamped to FLT_MAX range; callers pass max-subtracted arguments.
#include <bit>
#include <cstdint>

namespace herd::kernels::cpu {

inline float FastExp(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693145751953125f;  // ln2 split so n*kLn2Hi is exact
  const float kLn2Lo = 1.428606765330187045e-06f;
  const float kShift = 12582912.0f;  // 1.5 * 2^23: rounds to nearest integer
  float xc = x < -87.3f ? -87.3f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  const float t = xc * kLog2e + kShift;
  const float n = t - kShift;  // round(x / ln2)
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  const float scale = std::bit_cast<float>(e);
  const float y = p * scale;
  return x < -87.3f ? 0.0f : y;
}

}  // namespace herd::kernels::cpu
