#pragma once
// Token sampling: greedy, temperature, top-k, top-p, with counter-based
// random streams so that a draw depends only on (seed, sample index, token
// index) — never on batching or scheduling. Details: docs/generate.md.
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace herd::generate {

struct SamplingParams {
  float temperature = 1.0f;     // 0 = greedy (argmax, lowest id on ties). Default: 1
  int32_t top_k = 0;            // keep the k most likely tokens; 0 = off. Default: 0
  float top_p = 1.0f;           // nucleus: shortest most-likely set with mass >= top_p; 1 = off. Default: 1
  int32_t max_new_tokens = 128; // generated tokens at most, the stop token included. Default: 128
  int32_t eot_id = -1;          // <|eot_id|> (128009 for Llama 3); -1 = never stop early. Default: -1
};

// InvalidArgument naming the field (temperature < 0, top_p outside (0, 1],
// top_k < 0, max_new_tokens < 1, eot_id outside [-1, vocab)).
Status ValidateSamplingParams(const SamplingParams& p, int64_t vocab);

// splitmix64's output function (Steele, Lea, Flood 2014).
uint64_t SplitMix64(uint64_t z);
// The key of sample `idx`'s stream under `seed`.
uint64_t StreamKey(uint64_t seed, uint64_t idx);
// Uniform in [0, 1) for draw `counter` (= token index t) of stream `key`:
// the counter-th output of splitmix64 started at `key`, 53 bits.
double UniformAt(uint64_t key, uint64_t counter);

struct TokenDraw {
  int32_t token = 0;
  // log p(token) under the model's own distribution: log-softmax of the raw
  // (temperature 1, untruncated) logits, whatever the sampling settings.
  float logprob = 0.0f;
};

// One sampler per thread: it owns its scratch, sized once for the vocabulary.
class Sampler {
 public:
  explicit Sampler(int64_t vocab);

  // logits(V). u in [0, 1) (ignored when greedy).
  TokenDraw Sample(const float* logits, const SamplingParams& p, double u);

  // The distribution Sample draws from, as probabilities (V), for tests and
  // diagnostics (allocates nothing beyond `probs`).
  void Distribution(const float* logits, const SamplingParams& p, std::vector<double>* probs);

 private:
  // Fills order_[0..n) with the kept tokens in draw order and their weights
  // in w_ (unnormalised, e^((l - max)/T)); returns n and their total.
  int64_t Candidates(const float* logits, const SamplingParams& p, double* total);

  int64_t vocab_;
  std::vector<float> w_;          // (V) e^((l - max)/T)
  std::vector<int32_t> order_;    // (V) candidate ids
  float raw_logz_ = 0.0f;         // max + log sum e^(l - max)
};

}  // namespace herd::generate
