#pragma once
// Token-level loss math over logits, independent of the model: a stable
// log-softmax, the log-probability of each row's target, cross-entropy and
// their gradients with respect to the logits. The objectives (sft.h, dpo.h)
// are written on top of these.
//
// Layout: logits are (N, V) row-major, one row per token position (N = B*T
// for a packed batch). A row whose target is < 0 has no target: it gets
// logp 0 and a zero gradient row.
//
// dlogits may alias logits (in-place): each row is read completely before
// it is overwritten. At N = 8*256 and V = 32000 a separate dlogits buffer
// would be 262 MB, so the trainer writes the gradient over the logits.
#include <cstdint>
#include <span>

#include "common/status.h"

namespace herd::train {

// Checks that targets has N entries, each -1..V-1, naming the first bad index.
Status CheckTargets(std::span<const int32_t> targets, int64_t N, int64_t V);

// For every row i with targets[i] >= 0 (and, if `only` is non-empty,
// only[i] != 0):
//   lse[i]  = log Σ_v exp(logits[i, v])
//   logp[i] = logits[i, t_i] − lse[i]
// Other rows get logp 0 and lse 0. logp and lse have N entries.
// Accumulates the exp-sum in float64, after subtracting the row max.
void TokenLogProbs(const float* logits, int64_t N, int64_t V, std::span<const int32_t> targets,
                   std::span<const uint8_t> only, std::span<float> logp, std::span<float> lse);

// Backward of logp: given g[i] = ∂L/∂logp[i],
//   dlogits[i, v] = g[i] · (1[v == t_i] − softmax(logits[i])_v).
// Rows with g[i] == 0 or no target are written as zeros. lse from
// TokenLogProbs. dlogits may alias logits.
void TokenLogProbsBackward(const float* logits, int64_t N, int64_t V,
                           std::span<const int32_t> targets, std::span<const float> lse,
                           std::span<const float> dlogp, float* dlogits);

struct CrossEntropyStats {
  double loss = 0;        // Σ_i w_i · (−logp_i) / normalizer
  double weight_sum = 0;  // Σ_i w_i over rows with a target
  int64_t tokens = 0;     // rows with a target and w_i != 0
};

// Weighted cross-entropy, fused forward + backward in one pass per row:
//   loss     = Σ_i w_i · (−log softmax(logits[i])_{t_i}) / normalizer
//   dlogits  = w_i / normalizer · (softmax(logits[i]) − onehot(t_i))
// Rows with no target or w_i == 0 add nothing and get a zero gradient row.
// normalizer <= 0 means "Σ w_i" (mean over trained tokens); a zero weight
// sum gives loss 0 and zero gradients. dlogits may be null (loss only) or
// alias logits. Bad targets or sizes: InvalidArgument naming the index.
Result<CrossEntropyStats> CrossEntropy(const float* logits, int64_t N, int64_t V,
                                       std::span<const int32_t> targets,
                                       std::span<const float> weights, double normalizer,
                                       float* dlogits);

// −log σ(x) = softplus(−x), computed without overflow for any x.
double NegLogSigmoid(double x);
// σ(x) without overflow.
double Sigmoid(double x);

}  // namespace herd::train
