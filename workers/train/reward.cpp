#include "workers/train/reward.h"

#include <algorithm>
#include <string>

#include "workers/train/losses.h"
#include "workers/train/objective_data.h"
#include "workers/train/row_packing.h"

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

namespace {

class RewardObjective final : public Objective {
 public:
  RewardObjective(std::vector<RankedSample> s, RewardOptions o)
      : data_(std::move(s)), opts_(std::move(o)) {}
  const char* name() const override { return "rm"; }
  int64_t size() const override { return static_cast<int64_t>(data_.data().size()); }
  void Order(uint64_t seed, int64_t epoch) override {
    data_.Order(seed, epoch);
    // Responses get a new row order every epoch too.
    shuffle_seed_ = detail::Mix(seed + static_cast<uint64_t>(epoch));
  }
  Result<int64_t> Pack(int64_t cursor, int64_t B, int64_t T) override {
    std::span<const RankedSample> rest(data_.data().data() + cursor, data_.data().size() - cursor);
    return PackRm(rest, opts_, B, T, shuffle_seed_, &batch_);
  }
  double Weight() const override { return static_cast<double>(batch_.pairs.size()); }
  const model::PackedBatch& batch() const override { return batch_.batch; }
  Result<BatchResult> LossAndBackward(model::LlamaModel& m, bool backward,
                                      double grad_scale) override {
    if (!m.values())
      return Status::FailedPrecondition("RM training needs a reward model (score head)");
    const size_t R = batch_.reward_index.size();
    rewards_.resize(R);
    drewards_.resize(R);
    for (size_t r = 0; r < R; ++r) rewards_[r] = m.values()[batch_.reward_index[r]];
    HERD_ASSIGN_OR_RETURN(RewardMetrics rm,
                          BradleyTerryLoss(rewards_, batch_.pairs, opts_, drewards_));
    if (backward) {
      // The loss touches the scalar head only at each response's last token.
      dvalues_.assign(static_cast<size_t>(batch_.batch.size()), 0.0f);
      for (size_t r = 0; r < R; ++r) {
        dvalues_[batch_.reward_index[r]] += static_cast<float>(grad_scale * drewards_[r]);
      }
      HERD_RETURN_IF_ERROR(m.BackwardFromValues(dvalues_.data()));
    }
    BatchResult out;
    out.metrics.Set("loss", rm.loss);
    out.metrics.Set("accuracy", rm.accuracy);
    out.metrics.Set("margin", rm.margin);
    out.weight = static_cast<double>(rm.pairs);
    out.tokens = detail::CountTokens(batch_.batch);
    return out;
  }

 private:
  detail::OrderedData<RankedSample> data_;
  RewardOptions opts_;
  uint64_t shuffle_seed_ = 0;
  RmBatch batch_;
  std::vector<float> rewards_, drewards_, dvalues_;
};

}  // namespace

std::unique_ptr<Objective> MakeRewardObjective(std::vector<RankedSample> samples,
                                               RewardOptions opts) {
  return std::make_unique<RewardObjective>(std::move(samples), std::move(opts));
}

}  // namespace herd::train
