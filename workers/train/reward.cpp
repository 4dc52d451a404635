#include "workers/train/reward.h"

#include <algorithm>
#include <string>

#include "workers/train/losses.h"

namespace herd::train {
namespace {

constexpr const char* kStrengthNames[4] = {"significantly_better", "better", "slightly_better",
                                           "marginally_better"};

}  // namespace

Result<Strength> ParseStrength(std::string_view s) {
  for (int i = 0; i < 4; ++i) {
    if (s == kStrengthNames[i]) return static_cast<Strength>(i);
  }
  return Status::InvalidArgument("strength: '" + std::string(s) +
                                 "' is not one of significantly_better, better, "
                                 "slightly_better, marginally_better");
}

const char* StrengthName(Strength s) { return kStrengthNames[static_cast<int>(s) & 3]; }

Result<ImpliedRanking> ImpliedPairs(const RankedSample& sample, const RewardOptions& opts) {
  const std::string where = "sample '" + sample.id + "'";
  if (sample.prompt.empty()) return Status::InvalidArgument(where + ": prompt is empty");
  const auto n = sample.responses.size();
  if (n < 2 || n > 3) {
    return Status::InvalidArgument(where + ": expected 2 or 3 ranked responses, got " +
                                   std::to_string(n));
  }
  for (size_t k = 0; k < n; ++k) {
    if (sample.responses[k].empty()) {
      return Status::InvalidArgument(where + ": responses[" + std::to_string(k) + "] is empty");
    }
  }
  ImpliedRanking out;
  for (size_t k = 0; k < n; ++k) {
    bool dup = false;
    for (int32_t u : out.unique) dup = dup || sample.responses[u] == sample.responses[k];
    if (!dup) out.unique.push_back(static_cast<int32_t>(k));
  }
  const bool wanted = std::find(opts.strengths.begin(), opts.strengths.end(), sample.strength) !=
                      opts.strengths.end();
  if (!wanted) return out;
  const auto u = static_cast<int32_t>(out.unique.size());
  for (int32_t a = 0; a < u; ++a) {
    for (int32_t b = a + 1; b < u; ++b) out.pairs.push_back({a, b, sample.strength});
  }
  return out;
}

Result<RewardMetrics> BradleyTerryLoss(std::span<const float> rewards,
                                       std::span<const RewardPair> pairs, const RewardOptions& opts,
                                       std::span<float> drewards) {
  if (drewards.size() != rewards.size()) {
    return Status::InvalidArgument("drewards: expected " + std::to_string(rewards.size()) +
                                   " entries, got " + std::to_string(drewards.size()));
  }
  const auto n = static_cast<int64_t>(rewards.size());
  for (size_t p = 0; p < pairs.size(); ++p) {
    const auto& pr = pairs[p];
    if (pr.chosen < 0 || pr.chosen >= n || pr.rejected < 0 || pr.rejected >= n) {
      return Status::InvalidArgument("pairs[" + std::to_string(p) + "]: index outside 0.." +
                                     std::to_string(n - 1));
    }
  }
  std::fill(drewards.begin(), drewards.end(), 0.0f);
  RewardMetrics m;
  m.pairs = static_cast<int64_t>(pairs.size());
  if (pairs.empty()) return m;
  const double inv = 1.0 / static_cast<double>(pairs.size());
  for (const auto& pr : pairs) {
    const double diff = static_cast<double>(rewards[pr.chosen]) - rewards[pr.rejected];
    const double margin = opts.use_margin ? opts.margins[static_cast<int>(pr.strength) & 3] : 0.0;
    const double z = diff - margin;
    m.loss += NegLogSigmoid(z);
    m.accuracy += diff > 0 ? 1.0 : 0.0;
    m.margin += diff;
    // d/dz −log σ(z) = −σ(−z)
    const double g = -Sigmoid(-z) * inv;
    drewards[pr.chosen] += static_cast<float>(g);
    drewards[pr.rejected] -= static_cast<float>(g);
  }
  m.loss *= inv;
  m.accuracy *= inv;
  m.margin *= inv;
  return m;
}

}  // namespace herd::train
