#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/reduce.h"

namespace herd::kernels::cpu {

double SoftmaxCrossEntropyInPlace(float* logits, float* losses, const int32_t* targets,
                                  const float* weights, int64_t N, int64_t V, float grad_scale) {
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    float* __restrict x = logits + n * V;
    const int32_t t = targets[n];
    if (t < 0) {
      std::memset(x, 0, sizeof(float) * V);
      if (losses) losses[n] = 0.0f;
      continue;
    }
    const float mx = MaxOf(x, V);
    const float xt = x[t] - mx;  // kept: exp(xt) may underflow to 0
    const float sum = ExpShiftSum(x, V, mx);
    const double loss = std::log(static_cast<double>(sum)) - static_cast<double>(xt);
    const float w = weights ? weights[n] : 1.0f;
    if (losses) losses[n] = static_cast<float>(loss);
    total += static_cast<double>(w) * loss;
    const float g = grad_scale * w / sum;
    for (int64_t j = 0; j < V; ++j) x[j] *= g;
    x[t] -= grad_scale * w;
  }
  return total;
}

void TargetLogProbs(float* logp, const float* logits, const int32_t* targets, int64_t N,
                    int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict x = logits + n * V;
    const int32_t t = targets[n];
    if (t < 0) {
      logp[n] = 0.0f;
      continue;
    }
    const float mx = MaxOf(x, V);
    const float sum = ExpShiftSumConst(x, V, mx);
    logp[n] =
        static_cast<float>(static_cast<double>(x[t] - mx) - std::log(static_cast<double>(sum)));
  }
}

}  // namespace herd::kernels::cpu
