#pragma once
// Softmax cross-entropy over logits rows, fused with its gradient so the
// (N, V) logits buffer is overwritten by dlogits in place (no second
// N x V buffer).
#include <cstdint>

namespace herd::kernels::cpu {

// For each row n with targets[n] >= 0:
//   loss[n] = logsumexp(logits[n]) - logits[n][targets[n]]
//   logits[n] <- grad_scale * weights[n] * (softmax(logits[n]) - onehot(target))
// Rows with targets[n] < 0 get loss 0 and gradient 0. weights may be null
// (all 1). losses(N) may be null. Returns sum_n weights[n] * loss[n] in
// float64. Targets must lie in [0, V) (checked by the caller).
double SoftmaxCrossEntropyInPlace(float* logits, float* losses, const int32_t* targets,
                                  const float* weights, int64_t N, int64_t V, float grad_scale);

// Per-token log-probability of the target, log softmax(logits[n])[targets[n]]
// (0 where targets[n] < 0); logits are not modified. Used by objectives that
// need sequence log-probs (DPO, evaluation).
void TargetLogProbs(float* logp, const float* logits, const int32_t* targets, int64_t N, int64_t V);

}  // namespace herd::kernels::cpu
