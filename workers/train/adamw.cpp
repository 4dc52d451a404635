#include "workers/train/adamw.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace herd::train {

AdamW::AdamW(int64_t n, AdamWOptions options, std::vector<std::pair<int64_t, int64_t>> no_decay)
    : n_(n), opt_(options), m_(static_cast<size_t>(n), 0.0f), v_(static_cast<size_t>(n), 0.0f) {
  std::sort(no_decay.begin(), no_decay.end());
  int64_t at = 0;
  for (auto [off, len] : no_decay) {
    const int64_t b = std::clamp<int64_t>(off, at, n), e = std::clamp<int64_t>(off + len, b, n);
    if (b > at) spans_.push_back({at, b, true});
    if (e > b) spans_.push_back({b, e, false});
    at = std::max(at, e);
  }
  if (at < n) spans_.push_back({at, n, true});
}

void AdamW::Step(float* params, const float* grads, float lr) {
  ++t_;
  const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t_));
  // p -= step_size * m / (sqrt(v)/sqrt(bc2) + eps): the bias corrections
  // folded into two scalars.
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  float* __restrict m = m_.data();
  float* __restrict v = v_.data();
  for (const Span& s : spans_) {
    const float decay = s.decay ? 1.0f - lr * opt_.weight_decay : 1.0f;
    float* __restrict p = params;
    const float* __restrict g = grads;
    int64_t i = s.begin;
#if defined(__AVX512F__)
    // Explicit SIMD: without -fno-math-errno GCC keeps sqrt scalar (errno
    // branch), which makes this memory-bound loop several times slower. The
    // maskz form of sqrt avoids a GCC 12 false -Wmaybe-uninitialized.
    const __m512 vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2);
    const __m512 vb1c = _mm512_set1_ps(1.0f - b1), vb2c = _mm512_set1_ps(1.0f - b2);
    const __m512 vdecay = _mm512_set1_ps(decay), vstep = _mm512_set1_ps(step_size);
    const __m512 vbc2 = _mm512_set1_ps(inv_sqrt_bc2), veps = _mm512_set1_ps(eps);
    for (; i + 16 <= s.end; i += 16) {
      const __m512 gi = _mm512_loadu_ps(g + i);
      const __m512 mi = _mm512_fmadd_ps(vb1, _mm512_loadu_ps(m + i), _mm512_mul_ps(vb1c, gi));
      const __m512 vi =
          _mm512_fmadd_ps(vb2, _mm512_loadu_ps(v + i), _mm512_mul_ps(vb2c, _mm512_mul_ps(gi, gi)));
      _mm512_storeu_ps(m + i, mi);
      _mm512_storeu_ps(v + i, vi);
      const __m512 den = _mm512_fmadd_ps(_mm512_maskz_sqrt_ps(0xFFFF, vi), vbc2, veps);
      const __m512 upd = _mm512_div_ps(_mm512_mul_ps(vstep, mi), den);
      _mm512_storeu_ps(p + i, _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(p + i), vdecay), upd));
    }
#endif
    for (; i < s.end; ++i) {
      const float gi = g[i];
      const float mi = b1 * m[i] + (1.0f - b1) * gi;
      const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  }
}

}  // namespace herd::train
