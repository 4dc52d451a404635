#include "kernels/cpu/rope.h"

#include <cmath>
#include <numbers>

namespace herd::kernels::cpu {

void RopeInvFreq(double* inv_freq, int64_t head_dim, double theta,
                 const Llama3RopeScaling* scaling) {
  const int64_t half = head_dim / 2;
  for (int64_t k = 0; k < half; ++k) {
    // HF: 1 / theta ** (arange(0, hd, 2) / hd)
    double f = 1.0 / std::pow(theta, static_cast<double>(2 * k) / static_cast<double>(head_dim));
    if (scaling != nullptr) {
      const double old_len = scaling->original_max_position_embeddings;
      const double low_wavelen = old_len / scaling->low_freq_factor;
      const double high_wavelen = old_len / scaling->high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = f / scaling->factor;
      } else if (wavelen >= high_wavelen) {
        const double s = (old_len / wavelen - scaling->low_freq_factor) /
                         (scaling->high_freq_factor - scaling->low_freq_factor);
        f = (1.0 - s) * f / scaling->factor + s * f;
      }
    }
    inv_freq[k] = f;
  }
}

void RopeTables(float* cos, float* sin, const int32_t* positions, int64_t N, const double* inv_freq,
                int64_t half) {
  for (int64_t n = 0; n < N; ++n) {
    const double p = positions[n];
    for (int64_t k = 0; k < half; ++k) {
      const double a = p * inv_freq[k];
      cos[n * half + k] = static_cast<float>(std::cos(a));
      sin[n * half + k] = static_cast<float>(std::sin(a));
    }
  }
}

namespace {
// sign = +1: forward rotation; -1: its transpose.
inline void Rotate(float* x, int64_t N, int64_t n_heads, int64_t hd, int64_t ld, const float* cos,
                   const float* sin, float sign) {
  const int64_t half = hd / 2;
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict c = cos + n * half;
    const float* __restrict s = sin + n * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* __restrict x1 = x + n * ld + h * hd;
      float* __restrict x2 = x1 + half;
      for (int64_t k = 0; k < half; ++k) {
        const float a = x1[k], b = x2[k], sk = sign * s[k];
        x1[k] = a * c[k] - b * sk;
        x2[k] = b * c[k] + a * sk;
      }
    }
  }
}
}  // namespace

void RopeForward(float* x, int64_t N, int64_t n_heads, int64_t hd, int64_t ld, const float* cos,
                 const float* sin) {
  Rotate(x, N, n_heads, hd, ld, cos, sin, 1.0f);
}

void RopeBackward(float* dx, int64_t N, int64_t n_heads, int64_t hd, int64_t ld, const float* cos,
                  const float* sin) {
  Rotate(dx, N, n_heads, hd, ld, cos, sin, -1.0f);
}

}  // namespace herd::kernels::cpu
