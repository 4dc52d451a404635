#include "workers/train/adamw.h"

#include <algorithm>
#include <cmath>

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
    for (int64_t i = s.begin; i < s.end; ++i) {
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
