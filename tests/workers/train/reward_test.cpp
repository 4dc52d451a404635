#include "workers/train/reward.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/workers/train/objectives_reference.h"

namespace herd::train {
namespace {

RankedSample Sample(int n, Strength s = Strength::kBetter) {
  RankedSample r;
  r.id = "pair-7";
  r.prompt = {1, 2, 3};
  for (int k = 0; k < n; ++k) r.responses.push_back({10 + k, 20 + k});
  r.strength = s;
  return r;
}

TEST(Strength, ParsesTheFourNames) {
  EXPECT_EQ(ParseStrength("significantly_better").value(), Strength::kSignificantlyBetter);
  EXPECT_EQ(ParseStrength("marginally_better").value(), Strength::kMarginallyBetter);
  auto bad = ParseStrength("much_better");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("much_better"), std::string::npos);
  EXPECT_STREQ(StrengthName(Strength::kSlightlyBetter), "slightly_better");
}

TEST(ImpliedPairs, ThreeRankedResponsesGiveThreePairs) {
  auto r = ImpliedPairs(Sample(3), RewardOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->unique.size(), 3u);
  ASSERT_EQ(r->pairs.size(), 3u);
  // edited > chosen, edited > rejected, chosen > rejected
  EXPECT_EQ(r->pairs[0].chosen, 0);
  EXPECT_EQ(r->pairs[0].rejected, 1);
  EXPECT_EQ(r->pairs[1].chosen, 0);
  EXPECT_EQ(r->pairs[1].rejected, 2);
  EXPECT_EQ(r->pairs[2].chosen, 1);
  EXPECT_EQ(r->pairs[2].rejected, 2);
  auto two = ImpliedPairs(Sample(2), RewardOptions{});
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->pairs.size(), 1u);
}

TEST(ImpliedPairs, StrengthFilterAndIdenticalResponses) {
  // Default filter keeps significantly_better and better only.
  EXPECT_TRUE(ImpliedPairs(Sample(3, Strength::kSlightlyBetter), {})->pairs.empty());
  EXPECT_EQ(ImpliedPairs(Sample(3, Strength::kSignificantlyBetter), {})->pairs.size(), 3u);
  RewardOptions all;
  all.strengths = {Strength::kSlightlyBetter};
  EXPECT_EQ(ImpliedPairs(Sample(2, Strength::kSlightlyBetter), all)->pairs.size(), 1u);
  // An "edit" that changed nothing: edited == chosen leaves 2 distinct
  // responses and 1 pair.
  auto s = Sample(3);
  s.responses[0] = s.responses[1];
  auto r = ImpliedPairs(s, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unique, (std::vector<int32_t>{0, 2}));
  ASSERT_EQ(r->pairs.size(), 1u);
  // All identical: nothing trains.
  auto same = Sample(2);
  same.responses[1] = same.responses[0];
  EXPECT_TRUE(ImpliedPairs(same, {})->pairs.empty());
}

TEST(ImpliedPairs, BadSamplesAreErrorsNamingTheId) {
  auto one = Sample(1);
  auto r = ImpliedPairs(one, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("pair-7"), std::string::npos);
  auto empty = Sample(2);
  empty.responses[1].clear();
  EXPECT_FALSE(ImpliedPairs(empty, {}).ok());
  auto four = Sample(4);
  EXPECT_FALSE(ImpliedPairs(four, {}).ok());
}

TEST(BradleyTerry, HandComputedValues) {
  // r = (2, 0.5, −1), pairs (0,1), (0,2), (1,2): differences 1.5, 3, 1.5.
  // loss = (2·log(1+e^−1.5) + log(1+e^−3)) / 3
  //      = (2·0.2014132779827524 + 0.04858735157374206) / 3 = 0.1504713025130823
  // ∂/∂r0 = −(σ(−1.5) + σ(−3))/3 = −0.07661713232797437, ∂/∂r1 = 0, ∂/∂r2 = +0.0766…
  std::vector<float> r = {2.0f, 0.5f, -1.0f};
  std::vector<RewardPair> pairs = {{0, 1}, {0, 2}, {1, 2}};
  std::vector<float> dr(3);
  auto m = BradleyTerryLoss(r, pairs, {}, dr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_NEAR(m->loss, 0.1504713025130823, 1e-12);
  EXPECT_NEAR(dr[0], -0.07661713232797437, 1e-7);  // fp32 storage of the gradient
  EXPECT_NEAR(dr[1], 0.0, 1e-7);
  EXPECT_NEAR(dr[2], 0.07661713232797437, 1e-7);
  EXPECT_DOUBLE_EQ(m->accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m->margin, 2.0);
  EXPECT_EQ(m->pairs, 3);
}

TEST(BradleyTerry, MarginOnlyWhenEnabled) {
  std::vector<float> r = {2.0f, 0.5f};
  std::vector<RewardPair> pairs = {{0, 1, Strength::kSignificantlyBetter}};
  std::vector<float> dr(2);
  RewardOptions opts;
  EXPECT_NEAR(BradleyTerryLoss(r, pairs, opts, dr)->loss, 0.2014132779827524, 1e-12);
  opts.use_margin = true;  // m(significantly_better) = 1 → log(1 + e^−0.5)
  EXPECT_NEAR(BradleyTerryLoss(r, pairs, opts, dr)->loss, 0.4740769841801067, 1e-12);
}

TEST(BradleyTerry, GradientMatchesFiniteDifferences) {
  std::vector<float> r = {0.3f, -1.2f, 2.5f, 0.0f, 0.7f};
  std::vector<RewardPair> pairs = {{0, 1, Strength::kBetter},
                                   {2, 0, Strength::kSignificantlyBetter},
                                   {3, 4, Strength::kBetter},
                                   {4, 1, Strength::kBetter}};
  RewardOptions opts;
  opts.use_margin = true;
  std::vector<float> dr(5);
  ASSERT_TRUE(BradleyTerryLoss(r, pairs, opts, dr).ok());
  auto f = [&](const std::vector<double>& x) {
    double s = 0;
    for (const auto& p : pairs) {
      s += testref::Softplus(
          -(x[p.chosen] - x[p.rejected] - opts.margins[static_cast<int>(p.strength)]));
    }
    return s / pairs.size();
  };
  std::vector<double> x(r.begin(), r.end());
  // fp32 gradient vs float64 central differences: ‖Δ‖/‖ref‖ ≤ 1e-6.
  EXPECT_LT(testref::RelErr(dr, testref::FiniteDiff(x, f)), 1e-6);
  EXPECT_NEAR(BradleyTerryLoss(r, pairs, opts, dr)->loss, f(x), 1e-7);
}

TEST(BradleyTerry, BadPairIndexIsAnError) {
  std::vector<float> r = {1.0f, 2.0f};
  std::vector<RewardPair> pairs = {{0, 2}};
  std::vector<float> dr(2);
  auto m = BradleyTerryLoss(r, pairs, {}, dr);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("pairs[0]"), std::string::npos);
}

}  // namespace
}  // namespace herd::train
