#include "workers/train/losses.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/workers/train/objectives_reference.h"

namespace herd::train {
namespace {

using testref::FiniteDiff;
using testref::LogProb;
using testref::RandomLogits;
using testref::RelErr;

// Odd sizes on purpose (ggml/FlashInfer style): N = 7 rows, V = 111.
constexpr int64_t kN = 7;
constexpr int64_t kV = 111;

std::vector<int32_t> Targets() { return {3, -1, 110, 0, 57, -1, 12}; }

TEST(TokenLogProbs, MatchesFloat64Reference) {
  auto logits = RandomLogits(kN, kV, 1, 3.0f);
  // A row far from zero: the max subtraction must keep it finite.
  for (int64_t v = 0; v < kV; ++v) logits[3 * kV + v] += 1000.0f;
  auto t = Targets();
  std::vector<float> logp(kN), lse(kN);
  TokenLogProbs(logits.data(), kN, kV, t, {}, logp, lse);
  for (int64_t i = 0; i < kN; ++i) {
    if (t[i] < 0) {
      EXPECT_EQ(logp[i], 0.0f);
      continue;
    }
    const double ref = LogProb(logits.data() + i * kV, kV, t[i]);
    // fp32 logits of magnitude ~1000 carry ~6e-5 absolute rounding; the
    // others ~1e-6. Tolerance: 1e-6 relative to max(1, |logit|).
    const double scale = i == 3 ? 1000.0 : 1.0;
    EXPECT_NEAR(logp[i], ref, 1e-6 * scale + 1e-6) << "row " << i;
  }
}

TEST(TokenLogProbs, OnlyMaskSkipsRows) {
  auto logits = RandomLogits(kN, kV, 2);
  auto t = Targets();
  std::vector<uint8_t> only = {1, 1, 0, 1, 0, 1, 1};
  std::vector<float> logp(kN, 9.0f), lse(kN, 9.0f);
  TokenLogProbs(logits.data(), kN, kV, t, only, logp, lse);
  EXPECT_EQ(logp[2], 0.0f);
  EXPECT_EQ(logp[4], 0.0f);
  EXPECT_NE(logp[0], 0.0f);
}

TEST(TokenLogProbsBackward, MatchesFiniteDifferences) {
  auto logits = RandomLogits(kN, kV, 3);
  auto t = Targets();
  std::vector<float> g = {0.5f, 1.0f, -2.0f, 0.25f, 0.0f, 3.0f, -1.0f};
  std::vector<float> logp(kN), lse(kN), dl(kN * kV);
  TokenLogProbs(logits.data(), kN, kV, t, {}, logp, lse);
  TokenLogProbsBackward(logits.data(), kN, kV, t, lse, g, dl.data());
  // f(x) = Σ_i g_i · logp_i(x), in float64.
  std::vector<double> x(logits.begin(), logits.end());
  auto f = [&](const std::vector<double>& xs) {
    double s = 0;
    for (int64_t i = 0; i < kN; ++i) {
      if (t[i] >= 0) s += g[i] * LogProb(xs.data() + i * kV, kV, t[i]);
    }
    return s;
  };
  auto fd = FiniteDiff(x, f);
  // fp32 gradient vs float64 central differences (h = 1e-5, error ~1e-10):
  // ‖Δ‖/‖ref‖ ≤ 1e-5.
  EXPECT_LT(RelErr(dl, fd), 1e-5);
  // Rows with g = 0 or no target are exactly zero.
  for (int64_t v = 0; v < kV; ++v) {
    EXPECT_EQ(dl[1 * kV + v], 0.0f);
    EXPECT_EQ(dl[4 * kV + v], 0.0f);
  }
}

TEST(CrossEntropy, LossAndGradientMatchFloat64ReferenceAndFiniteDifferences) {
  auto logits = RandomLogits(kN, kV, 4);
  auto t = Targets();
  std::vector<float> w = {1.0f, 1.0f, 0.5f, 0.0f, 2.0f, 1.0f, 1.0f};
  std::vector<float> dl(kN * kV);
  auto r = CrossEntropy(logits.data(), kN, kV, t, w, 0, dl.data());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Weight sum over rows with a target: 1 + 0.5 + 0 + 2 + 1 = 4.5.
  EXPECT_DOUBLE_EQ(r->weight_sum, 4.5);
  EXPECT_EQ(r->tokens, 4);
  std::vector<double> x(logits.begin(), logits.end());
  auto f = [&](const std::vector<double>& xs) {
    double s = 0;
    for (int64_t i = 0; i < kN; ++i) {
      if (t[i] >= 0) s -= w[i] * LogProb(xs.data() + i * kV, kV, t[i]);
    }
    return s / 4.5;
  };
  // Loss: float64 accumulation of fp32 log-sum-exps, ≤ 1e-6 relative.
  EXPECT_NEAR(r->loss, f(x), 1e-6 * f(x));
  EXPECT_LT(RelErr(dl, FiniteDiff(x, f)), 1e-5);
}

TEST(CrossEntropy, InPlaceEqualsOutOfPlace) {
  auto logits = RandomLogits(kN, kV, 5);
  auto t = Targets();
  std::vector<float> w(kN, 1.0f);
  std::vector<float> dl(kN * kV);
  auto a = CrossEntropy(logits.data(), kN, kV, t, w, 0, dl.data());
  auto b = CrossEntropy(logits.data(), kN, kV, t, w, 0, logits.data());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->loss, b->loss);
  EXPECT_EQ(dl, logits);  // logits now hold the gradient, bit-identical
}

TEST(CrossEntropy, ExplicitNormalizerAndEmptyWeights) {
  auto logits = RandomLogits(kN, kV, 6);
  auto t = Targets();
  std::vector<float> w(kN, 1.0f);
  auto mean = CrossEntropy(logits.data(), kN, kV, t, w, 0, nullptr);
  auto sum = CrossEntropy(logits.data(), kN, kV, t, w, 1.0, nullptr);
  ASSERT_TRUE(mean.ok() && sum.ok());
  EXPECT_NEAR(sum->loss, mean->loss * 5, 1e-9 * sum->loss);  // 5 rows have a target
  std::vector<float> zero(kN, 0.0f), dl(kN * kV, 7.0f);
  auto none = CrossEntropy(logits.data(), kN, kV, t, zero, 0, dl.data());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->loss, 0.0);
  for (float v : dl) ASSERT_EQ(v, 0.0f);
}

TEST(CrossEntropy, BadTargetsAreErrorsNamingTheIndex) {
  auto logits = RandomLogits(kN, kV, 7);
  auto t = Targets();
  t[4] = static_cast<int32_t>(kV);
  std::vector<float> w(kN, 1.0f);
  auto r = CrossEntropy(logits.data(), kN, kV, t, w, 0, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("targets[4]"), std::string::npos) << r.status().message();
  std::vector<float> short_w(3, 1.0f);
  EXPECT_FALSE(CrossEntropy(logits.data(), kN, kV, Targets(), short_w, 0, nullptr).ok());
}

TEST(Sigmoids, StableAtExtremes) {
  EXPECT_NEAR(NegLogSigmoid(0.0), std::log(2.0), 1e-15);
  EXPECT_NEAR(NegLogSigmoid(1000.0), 0.0, 1e-300);
  EXPECT_NEAR(NegLogSigmoid(-1000.0), 1000.0, 1e-9);
  EXPECT_NEAR(NegLogSigmoid(1.5), 0.2014132779827524, 1e-15);  // log1p(e^-1.5)
  EXPECT_NEAR(Sigmoid(-1000.0), 0.0, 1e-300);
  EXPECT_NEAR(Sigmoid(1000.0), 1.0, 1e-15);
  EXPECT_NEAR(Sigmoid(-1.5), 0.18242552380635635, 1e-15);
}

}  // namespace
}  // namespace herd::train
