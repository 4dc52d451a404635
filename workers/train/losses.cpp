#include "workers/train/losses.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace herd::train {
namespace {

// Row max and log Σ exp(x − max) + max, the exp-sum accumulated in float64
// so that a vocabulary of 128K terms adds no visible rounding; the exps
// themselves stay float (each within 1 ulp), which is what fp32 logits carry.
inline float RowLogSumExp(const float* x, int64_t V) {
  float m = x[0];
  for (int64_t v = 1; v < V; ++v) m = std::max(m, x[v]);
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(x[v] - m);  // float exp, float64 sum
  return m + static_cast<float>(std::log(s));
}

}  // namespace

Status CheckTargets(std::span<const int32_t> targets, int64_t N, int64_t V) {
  if (static_cast<int64_t>(targets.size()) != N) {
    return Status::InvalidArgument("targets: expected " + std::to_string(N) + " entries, got " +
                                   std::to_string(targets.size()));
  }
  for (int64_t i = 0; i < N; ++i) {
    if (targets[i] < -1 || targets[i] >= V) {
      return Status::InvalidArgument("targets[" + std::to_string(i) + "] = " +
                                     std::to_string(targets[i]) + " outside -1.." +
                                     std::to_string(V - 1));
    }
  }
  return Status::Ok();
}

void TokenLogProbs(const float* logits, int64_t N, int64_t V, std::span<const int32_t> targets,
                   std::span<const uint8_t> only, std::span<float> logp, std::span<float> lse) {
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = targets[i];
    if (t < 0 || (!only.empty() && only[i] == 0)) {
      logp[i] = 0.0f;
      lse[i] = 0.0f;
      continue;
    }
    const float* row = logits + i * V;
    lse[i] = RowLogSumExp(row, V);
    logp[i] = row[t] - lse[i];
  }
}

void TokenLogProbsBackward(const float* logits, int64_t N, int64_t V,
                           std::span<const int32_t> targets, std::span<const float> lse,
                           std::span<const float> dlogp, float* dlogits) {
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = targets[i];
    const float g = dlogp[i];
    const float* row = logits + i * V;
    float* drow = dlogits + i * V;
    if (t < 0 || g == 0.0f) {
      std::fill(drow, drow + V, 0.0f);
      continue;
    }
    // ∂logp/∂x_v = 1[v == t] − p_v; row and drow may be the same memory.
    const float l = lse[i];
    for (int64_t v = 0; v < V; ++v) drow[v] = -g * std::exp(row[v] - l);
    drow[t] += g;
  }
}

Result<CrossEntropyStats> CrossEntropy(const float* logits, int64_t N, int64_t V,
                                       std::span<const int32_t> targets,
                                       std::span<const float> weights, double normalizer,
                                       float* dlogits) {
  HERD_RETURN_IF_ERROR(CheckTargets(targets, N, V));
  if (static_cast<int64_t>(weights.size()) != N) {
    return Status::InvalidArgument("loss_weights: expected " + std::to_string(N) +
                                   " entries, got " + std::to_string(weights.size()));
  }
  CrossEntropyStats st;
  for (int64_t i = 0; i < N; ++i) {
    if (targets[i] >= 0) st.weight_sum += weights[i];
  }
  const double norm = normalizer > 0 ? normalizer : st.weight_sum;
  double loss = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = targets[i];
    const float w = weights[i];
    const float* row = logits + i * V;
    float* drow = dlogits ? dlogits + i * V : nullptr;
    if (t < 0 || w == 0.0f || norm == 0) {
      if (drow) std::fill(drow, drow + V, 0.0f);
      continue;
    }
    const float l = RowLogSumExp(row, V);
    loss += static_cast<double>(w) * (static_cast<double>(l) - row[t]);
    ++st.tokens;
    if (drow) {
      const float scale = static_cast<float>(w / norm);
      for (int64_t v = 0; v < V; ++v) drow[v] = scale * std::exp(row[v] - l);
      drow[t] -= scale;
    }
  }
  st.loss = norm == 0 ? 0.0 : loss / norm;
  return st;
}

double NegLogSigmoid(double x) {
  // softplus(−x) = max(−x, 0) + log1p(exp(−|x|))
  return std::max(-x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

double Sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace herd::train
