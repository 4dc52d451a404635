#include "workers/train/losses.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cpu/fast_exp.h"

namespace herd::train {
namespace {

using kernels::cpu::FastExp;

// Reductions over a row in kLanes independent partial results, so GCC
// vectorises them without -ffast-math (a single accumulator is a serial
// dependency it must keep in order).
constexpr int64_t kLanes = 16;
// The exp-sum is taken in blocks: fp32 lanes within a block of kBlock
// elements (kBlock / kLanes = 64 terms per lane), blocks added in float64,
// so a 128K vocabulary adds no visible rounding.
constexpr int64_t kBlock = 1024;

inline float RowMax(const float* x, int64_t V) {
  float lane[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) lane[l] = x[0];
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lane[l] = lane[l] > x[v + l] ? lane[l] : x[v + l];
  }
  float m = x[0];
  for (int64_t l = 0; l < kLanes; ++l) m = std::max(m, lane[l]);
  for (; v < V; ++v) m = std::max(m, x[v]);
  return m;
}

// Σ_v exp(x[v] − m); with out, also writes each exp(x[v] − m) to out[v]
// (out may be x).
inline double RowSumExp(const float* x, int64_t V, float m, float* out) {
  double total = 0;
  for (int64_t b = 0; b < V; b += kBlock) {
    const int64_t e = std::min(V, b + kBlock);
    float lane[kLanes] = {};
    int64_t v = b;
    if (out) {
      for (; v + kLanes <= e; v += kLanes) {
        for (int64_t l = 0; l < kLanes; ++l) {
          const float y = FastExp(x[v + l] - m);
          out[v + l] = y;
          lane[l] += y;
        }
      }
      for (; v < e; ++v) {
        out[v] = FastExp(x[v] - m);
        lane[0] += out[v];
      }
    } else {
      for (; v + kLanes <= e; v += kLanes) {
        for (int64_t l = 0; l < kLanes; ++l) lane[l] += FastExp(x[v + l] - m);
      }
      for (; v < e; ++v) lane[0] += FastExp(x[v] - m);
    }
    double s = 0;
    for (int64_t l = 0; l < kLanes; ++l) s += lane[l];
    total += s;
  }
  return total;
}

inline float RowLogSumExp(const float* x, int64_t V) {
  const float m = RowMax(x, V);
  return m + static_cast<float>(std::log(RowSumExp(x, V, m, nullptr)));
}

}  // namespace

Status CheckTargets(std::span<const int32_t> targets, int64_t N, int64_t V) {
  if (static_cast<int64_t>(targets.size()) != N) {
    return Status::InvalidArgument("targets: expected " + std::to_string(N) + " entries, got " +
                                   std::to_string(targets.size()));
  }
  for (int64_t i = 0; i < N; ++i) {
    if (targets[i] < -1 || targets[i] >= V) {
      return Status::InvalidArgument("targets[" + std::to_string(i) +
                                     "] = " + std::to_string(targets[i]) + " outside -1.." +
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
    for (int64_t v = 0; v < V; ++v) drow[v] = -g * FastExp(row[v] - l);
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
    // One exp pass: exp(x − max) goes straight into the gradient row and is
    // scaled once the sum is known. row[t] is read before drow may overwrite it.
    const float xt = row[t];
    const float m = RowMax(row, V);
    const double sum = RowSumExp(row, V, m, drow);
    const double lse = static_cast<double>(m) + std::log(sum);
    loss += static_cast<double>(w) * (lse - xt);
    ++st.tokens;
    if (drow) {
      const float scale = static_cast<float>(w / norm);
      const auto f = static_cast<float>(w / norm / sum);
      for (int64_t v = 0; v < V; ++v) drow[v] *= f;
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
