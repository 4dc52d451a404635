#include "workers/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cpu/fast_exp.h"

namespace herd::generate {

Status ValidateSamplingParams(const SamplingParams& p, int64_t vocab) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    return Status::InvalidArgument("sampling.temperature must be finite and >= 0, got " +
                                   std::to_string(p.temperature));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return Status::InvalidArgument("sampling.top_p must be in (0, 1], got " +
                                   std::to_string(p.top_p));
  if (p.top_k < 0)
    return Status::InvalidArgument("sampling.top_k must be >= 0, got " + std::to_string(p.top_k));
  if (p.max_new_tokens < 1)
    return Status::InvalidArgument("sampling.max_new_tokens must be >= 1, got " +
                                   std::to_string(p.max_new_tokens));
  if (p.eot_id < -1 || p.eot_id >= vocab)
    return Status::InvalidArgument("sampling.eot_id " + std::to_string(p.eot_id) +
                                   " outside [-1, vocab_size " + std::to_string(vocab) + ")");
  return Status::Ok();
}

uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {
constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;  // splitmix64's increment
}

uint64_t StreamKey(uint64_t seed, uint64_t idx) {
  // Two rounds so that nearby (seed, idx) pairs give unrelated keys.
  return SplitMix64(SplitMix64(seed + kGamma) ^ (idx * 0xd1b54a32d192ed03ULL + kGamma));
}

double UniformAt(uint64_t key, uint64_t counter) {
  const uint64_t z = SplitMix64(key + (counter + 1) * kGamma);
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

Sampler::Sampler(int64_t vocab)
    : vocab_(vocab), w_(static_cast<size_t>(vocab)), order_(static_cast<size_t>(vocab)) {}

int64_t Sampler::Candidates(const float* logits, const SamplingParams& p, double* total) {
  const int64_t V = vocab_;
  float mx = logits[0];
  for (int64_t i = 1; i < V; ++i) mx = logits[i] > mx ? logits[i] : mx;
  // One pass: the raw log-partition (for the returned log-prob) and the
  // tempered weights (for the draw).
  // FastExp (about 1 ulp) vectorises; the sums run in float64, in id order.
  const float inv_t = 1.0f / p.temperature;
  float* __restrict w = w_.data();
  for (int64_t i = 0; i < V; ++i) w[i] = kernels::cpu::FastExp(logits[i] - mx);
  double raw_sum = 0.0;
  for (int64_t i = 0; i < V; ++i) raw_sum += w[i];
  if (inv_t != 1.0f)
    for (int64_t i = 0; i < V; ++i) w[i] = kernels::cpu::FastExp((logits[i] - mx) * inv_t);
  raw_logz_ = mx + static_cast<float>(std::log(raw_sum));

  // Draw order: descending weight, ascending id on ties (deterministic).
  auto before = [&](int32_t a, int32_t b) {
    const float wa = w_[static_cast<size_t>(a)], wb = w_[static_cast<size_t>(b)];
    return wa > wb || (wa == wb && a < b);
  };
  const bool use_k = p.top_k > 0 && p.top_k < V;
  const bool use_p = p.top_p < 1.0f;
  int64_t n = 0;
  double base = 0.0;   // the mass top_p is a share of: all tokens, or the top k
  if (!use_k && !use_p) {
    // No truncation: draw over ids in index order, no sort needed.
    double s = 0.0;
    for (int64_t i = 0; i < V; ++i) {
      order_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      s += w_[static_cast<size_t>(i)];
    }
    *total = s;
    return V;
  }
  if (use_k) {
    for (int64_t i = 0; i < V; ++i) order_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    std::partial_sort(order_.begin(), order_.begin() + p.top_k, order_.end(), before);
    n = p.top_k;
  } else {
    // Nucleus over the whole vocabulary without sorting it all: tokens with
    // weight >= tau all come before those below it in draw order, so if
    // their mass already reaches top_p the nucleus lies among them.
    double all = 0.0;
    for (int64_t i = 0; i < V; ++i) all += w_[static_cast<size_t>(i)];
    base = all;
    const double want = static_cast<double>(p.top_p) * all;
    float tau = 1.0f / 16.0f;   // the max weight is 1
    for (;;) {
      n = 0;
      double mass = 0.0;
      for (int64_t i = 0; i < V; ++i)
        if (w_[static_cast<size_t>(i)] >= tau) {
          order_[static_cast<size_t>(n++)] = static_cast<int32_t>(i);
          mass += w_[static_cast<size_t>(i)];
        }
      if (mass >= want || tau == 0.0f) break;
      tau = tau > 1e-30f ? tau / 256.0f : 0.0f;
    }
    std::sort(order_.begin(), order_.begin() + n, before);
  }
  double mass_k = 0.0;
  for (int64_t j = 0; j < n; ++j) mass_k += w_[static_cast<size_t>(order_[static_cast<size_t>(j)])];
  if (use_k) base = mass_k;
  if (use_p) {
    // Shortest prefix (in draw order) whose share of `base` reaches top_p;
    // at least one token.
    const double want = static_cast<double>(p.top_p) * base;
    double cum = 0.0;
    int64_t keep = 0;
    while (keep < n) {
      cum += w_[static_cast<size_t>(order_[static_cast<size_t>(keep)])];
      ++keep;
      if (cum >= want) break;
    }
    n = keep;
    mass_k = cum;
  }
  *total = mass_k;
  return n;
}

TokenDraw Sampler::Sample(const float* logits, const SamplingParams& p, double u) {
  TokenDraw d;
  if (p.temperature == 0.0f) {
    int64_t best = 0;
    float mx = logits[0];
    for (int64_t i = 1; i < vocab_; ++i)
      if (logits[i] > mx) {
        mx = logits[i];
        best = i;
      }
    double s = 0.0;
    for (int64_t i = 0; i < vocab_; ++i) s += std::exp(logits[i] - mx);
    d.token = static_cast<int32_t>(best);
    d.logprob = -static_cast<float>(std::log(s));
    return d;
  }
  double total = 0.0;
  const int64_t n = Candidates(logits, p, &total);
  const double target = u * total;
  double cum = 0.0;
  int32_t tok = order_[static_cast<size_t>(n - 1)];   // rounding fallback: the last kept
  for (int64_t j = 0; j < n; ++j) {
    const int32_t t = order_[static_cast<size_t>(j)];
    cum += w_[static_cast<size_t>(t)];
    if (cum > target) {
      tok = t;
      break;
    }
  }
  d.token = tok;
  d.logprob = logits[tok] - raw_logz_;
  return d;
}

void Sampler::Distribution(const float* logits, const SamplingParams& p,
                           std::vector<double>* probs) {
  probs->assign(static_cast<size_t>(vocab_), 0.0);
  if (p.temperature == 0.0f) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab_; ++i)
      if (logits[i] > logits[best]) best = i;
    (*probs)[static_cast<size_t>(best)] = 1.0;
    return;
  }
  double total = 0.0;
  const int64_t n = Candidates(logits, p, &total);
  for (int64_t j = 0; j < n; ++j) {
    const int32_t t = order_[static_cast<size_t>(j)];
    (*probs)[static_cast<size_t>(t)] = w_[static_cast<size_t>(t)] / total;
  }
}

}  // namespace herd::generate
