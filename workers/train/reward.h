#pragma once
// Reward-model objective (Llama 3 §4.1.2): Bradley–Terry loss on the scalar
// rewards of ranked responses,
//   loss_pair = −log σ(r_chosen − r_rejected − m(strength)),
// with m = 0 unless the Llama 2 style margin is switched on. A sample with
// 2 or 3 ranked responses (edited > chosen > rejected) contributes every
// implied pair; pairs outside the configured strengths and pairs whose two
// responses are token-identical are dropped.
//
// The rewards themselves come from the model's scalar head read at each
// response's last token (row_packing.h records where); this file is the
// loss math, and MakeRewardObjective wraps it as the trainer's Objective.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "workers/train/objective.h"

namespace herd::train {

// How much better the annotator said the chosen response is. The order is
// the paper's, strongest first; the enum value indexes margin tables.
enum class Strength : uint8_t {
  kSignificantlyBetter = 0,
  kBetter = 1,
  kSlightlyBetter = 2,
  kMarginallyBetter = 3,
};
// "significantly_better" | "better" | "slightly_better" | "marginally_better"
Result<Strength> ParseStrength(std::string_view s);
const char* StrengthName(Strength s);

struct RewardOptions {
  // Strengths whose pairs train. Default: significantly_better, better
  // (Llama 3 §4.1.2).
  std::vector<Strength> strengths = {Strength::kSignificantlyBetter, Strength::kBetter};
  // Subtract m(strength) inside the sigmoid (Llama 2 §3.2.2). Default: false
  // (Llama 3 removed the margin).
  bool use_margin = false;
  // m per strength, indexed by Strength. Default: Llama 2's "small" margins
  // 1, 2/3, 1/3, 0.
  std::array<double, 4> margins = {1.0, 2.0 / 3.0, 1.0 / 3.0, 0.0};
};

// One preference sample: a prompt and 2 or 3 responses ranked best first
// (edited > chosen > rejected, or chosen > rejected). The strength is the
// annotator's for chosen vs rejected; the edited response's pairs carry the
// same strength (the annotator judged the pair it was edited from).
struct RankedSample {
  std::string id;               // pair id, for errors and seeding
  std::vector<int32_t> prompt;  // formatted prompt ids, ends with the assistant header
  std::vector<std::vector<int32_t>> responses;  // 2 or 3, best first; content + <|eot_id|>
  Strength strength = Strength::kBetter;
};

// A pair of indices into some list of responses (or rewards): the first was
// preferred over the second.
struct RewardPair {
  int32_t chosen = 0;
  int32_t rejected = 0;
  Strength strength = Strength::kBetter;
};

struct ImpliedRanking {
  // Indices into sample.responses of the distinct responses, best first:
  // a response token-identical to a better-ranked one is dropped.
  std::vector<int32_t> unique;
  // Pairs as indices into `unique`: every (better, worse) combination, so
  // 3 distinct responses give 3 pairs. Empty when the strength is filtered
  // out or fewer than 2 distinct responses remain.
  std::vector<RewardPair> pairs;
};

// Validates the sample (2 or 3 non-empty responses, non-empty prompt;
// errors name sample.id) and expands it into its trainable pairs.
Result<ImpliedRanking> ImpliedPairs(const RankedSample& sample, const RewardOptions& opts);

struct RewardMetrics {
  double loss = 0;      // mean over pairs of −log σ(r_c − r_r − m)
  double accuracy = 0;  // fraction of pairs with r_c > r_r
  double margin = 0;    // mean of r_c − r_r
  int64_t pairs = 0;
};

// Bradley–Terry loss, mean over pairs, and its gradient per reward:
//   drewards[k] = Σ_{pairs p} ∂loss/∂r_k   (zeros for rewards in no pair).
// rewards and drewards have one entry per response; pair indices must lie
// in range (InvalidArgument naming the pair otherwise). No pairs: loss 0.
Result<RewardMetrics> BradleyTerryLoss(std::span<const float> rewards,
                                       std::span<const RewardPair> pairs, const RewardOptions& opts,
                                       std::span<float> drewards);

// Reward model on ranked samples; the model must be a reward model
// (scalar head). Metrics: loss, accuracy, margin, pairs.
std::unique_ptr<Objective> MakeRewardObjective(std::vector<RankedSample> samples,
                                               RewardOptions opts = {});

}  // namespace herd::train
