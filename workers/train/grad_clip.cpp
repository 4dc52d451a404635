#include "workers/train/grad_clip.h"

#include <cmath>

#include "kernels/cpu/elementwise.h"

namespace herd::train {

double ClipGradNorm(float* grads, int64_t n, double max_norm) {
  const double norm = std::sqrt(kernels::cpu::SumSquares(grads, n));
  if (!std::isfinite(norm)) return norm;
  if (max_norm > 0.0 && norm > max_norm)
    kernels::cpu::Scale(grads, static_cast<float>(max_norm / norm), n);
  return norm;
}

}  // namespace herd::train
