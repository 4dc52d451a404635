#include "workers/train/sft.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/workers/train/objectives_reference.h"
#include "workers/train/row_packing.h"

namespace herd::train {
namespace {

constexpr int64_t kV = 29;

model::PackedBatch Batch() {
  // Two conversations in a row: prompt tokens untrained, answer + eot trained.
  std::vector<SftExample> ex = {{{1, 2, 3, 10, 11, 28}, {0, 0, 0, 1, 1, 1}},
                                {{1, 4, 12, 28}, {0, 0, 1, 1}}};
  model::PackedBatch b;
  EXPECT_EQ(PackSft(ex, 1, 12, {}, &b).value(), 2);
  return b;
}

TEST(SftLoss, MeanOverTrainedTokensMatchesFloat64Reference) {
  auto b = Batch();
  auto logits = testref::RandomLogits(b.size(), kV, 21);
  std::vector<float> dl(logits.size());
  auto m = SftLoss(b, logits.data(), kV, dl.data());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->tokens, 5);  // 3 + 2 trained targets
  EXPECT_EQ(SftTokenCount(b), 5.0);
  // Reference: the trained targets are 10, 11, 28 (conv 0) and 12, 28 (conv 1)
  // predicted at row positions 2, 3, 4 and 7, 8.
  const std::vector<std::pair<int, int>> trained = {{2, 10}, {3, 11}, {4, 28}, {7, 12}, {8, 28}};
  double want = 0;
  for (auto [i, t] : trained) want -= testref::LogProb(logits.data() + i * kV, kV, t);
  want /= 5;
  EXPECT_NEAR(m->loss, want, 1e-6 * want);
  std::vector<double> x(logits.begin(), logits.end());
  auto fd = testref::FiniteDiff(x, [&](const std::vector<double>& xs) {
    double s = 0;
    for (auto [i, t] : trained) s -= testref::LogProb(xs.data() + i * kV, kV, t);
    return s / 5;
  });
  // ‖Δ‖/‖ref‖ ≤ 1e-5 against float64 central differences.
  EXPECT_LT(testref::RelErr(dl, fd), 1e-5);
}

TEST(SftLoss, DoesNotDependOnPromptTargets) {
  auto b = Batch();
  auto logits = testref::RandomLogits(b.size(), kV, 22);
  std::vector<float> d1(logits.size()), d2(logits.size());
  auto a = SftLoss(b, logits.data(), kV, d1.data());
  // Rewrite every untrained target (prompt positions) to something else.
  int changed = 0;
  for (int64_t i = 0; i < b.size(); ++i) {
    if (b.targets[i] >= 0 && b.loss_weights[i] == 0.0f) {
      b.targets[i] = (b.targets[i] + 7) % kV;
      ++changed;
    }
  }
  ASSERT_EQ(changed, 3);  // 1→2, 2→3 in conv 0; 1→4 in conv 1
  auto c = SftLoss(b, logits.data(), kV, d2.data());
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ(a->loss, c->loss);
  EXPECT_EQ(d1, d2);
}

TEST(SftLoss, PackingDoesNotChangeTheLoss) {
  // Same two conversations, one per row: the token-mean is the same.
  std::vector<SftExample> ex = {{{1, 2, 3, 10, 11, 28}, {0, 0, 0, 1, 1, 1}},
                                {{1, 4, 12, 28}, {0, 0, 1, 1}}};
  model::PackedBatch packed, split;
  ASSERT_EQ(PackSft(ex, 1, 12, {}, &packed).value(), 2);
  ASSERT_EQ(PackSft(ex, 2, 6, {}, &split).value(), 2);
  // Logits per position: copy the packed rows' logits to the split layout.
  auto lp = testref::RandomLogits(packed.size(), kV, 23);
  std::vector<float> ls(split.size() * kV, 0.0f);
  std::copy(lp.begin(), lp.begin() + 6 * kV, ls.begin());
  std::copy(lp.begin() + 6 * kV, lp.begin() + 10 * kV, ls.begin() + 6 * kV);
  auto a = SftLoss(packed, lp.data(), kV, nullptr);
  auto c = SftLoss(split, ls.data(), kV, nullptr);
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_NEAR(a->loss, c->loss, 1e-12);
}

}  // namespace
}  // namespace herd::train
