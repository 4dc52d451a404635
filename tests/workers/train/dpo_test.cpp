#include "workers/train/dpo.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "tests/workers/train/objectives_reference.h"

namespace herd::train {
namespace {

using testref::LogProb;
using testref::RandomLogits;
using testref::RelErr;

constexpr int64_t kV = 37;

// Two pairs per row, three pairs over two rows; responses end with a
// formatting token (id 36 plays <|eot_id|>) and one has a formatting token
// inside.
std::vector<DpoSample> Samples() {
  std::vector<DpoSample> s(3);
  s[0] = {"p0", {1, 2, 3, 4}, {5, 6, 36}, {0, 0, 1}, {7, 36}, {0, 1}};
  s[1] = {"p1", {1, 9}, {10, 35, 11, 36}, {0, 1, 0, 1}, {12, 13, 14, 36}, {0, 0, 0, 1}};
  s[2] = {"p2", {1, 2, 8}, {20, 21, 36}, {0, 0, 1}, {22, 36}, {0, 1}};
  return s;
}

DpoBatch Pack(int64_t B = 2, int64_t T = 24) {
  DpoBatch b;
  auto samples = Samples();
  auto n = PackDpo(samples, B, T, &b);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n.value(), 3);
  return b;
}

// Float64 reference of the whole objective, straight from the formula in
// dpo.h, over float64 logits.
double ReferenceLoss(const DpoBatch& b, const std::vector<double>& x,
                     const std::vector<SequenceLogProb>& ref, const DpoOptions& o) {
  const size_t P = b.pair_ids.size();
  std::vector<double> pc(P, 0), pr(P, 0), nll(P, 0), n(P, 0);
  for (int64_t i = 0; i < b.batch.size(); ++i) {
    const uint8_t f = b.flags[i];
    if (!f) continue;
    const int32_t p = b.pair_of[i];
    const bool fmt = f & kDpoFormatting;
    const double lp = LogProb(x.data() + i * kV, kV, b.batch.targets[i]);
    if (!(o.mask_formatting && fmt)) (f & kDpoChosen ? pc[p] : pr[p]) += lp;
    if ((f & kDpoChosen) && !(o.mask_formatting && !o.nll_include_formatting && fmt)) {
      nll[p] -= lp;
      n[p] += 1;
    }
  }
  double loss = 0;
  for (size_t p = 0; p < P; ++p) {
    const double z = o.beta * ((pc[p] - ref[p].chosen) - (pr[p] - ref[p].rejected));
    loss += testref::Softplus(-z) + o.nll_alpha * nll[p] / n[p];
  }
  return loss / P;
}

std::vector<SequenceLogProb> SomeReference() {
  return {{-20.0, -15.0}, {-31.5, -22.0}, {-12.0, -18.0}};
}

TEST(DpoLoss, IsLn2WhenPolicyEqualsReference) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 11);
  DpoWorkspace ws;
  for (bool mask : {true, false}) {
    DpoOptions o;
    o.mask_formatting = mask;
    std::vector<SequenceLogProb> ref;
    ASSERT_TRUE(SequenceLogProbs(b, logits.data(), kV, o, &ws, &ref).ok());
    auto m = DpoLoss(b, logits.data(), kV, ref, o, &ws, nullptr);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    // Identical inputs give z = 0 exactly, so −log σ(0) = ln 2 to double rounding.
    EXPECT_NEAR(m->dpo_loss, std::log(2.0), 1e-12);
    EXPECT_NEAR(m->chosen_reward, 0.0, 1e-12);
    EXPECT_NEAR(m->margin, 0.0, 1e-12);
    EXPECT_GT(m->nll, 0.0);
    EXPECT_NEAR(m->loss, std::log(2.0) + 0.2 * m->nll, 1e-12);
  }
}

TEST(DpoLoss, GradientMatchesFiniteDifferencesOfFloat64Reference) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 12);
  auto ref = SomeReference();
  std::vector<double> x(logits.begin(), logits.end());
  DpoWorkspace ws;
  for (int variant = 0; variant < 3; ++variant) {
    DpoOptions o;
    o.beta = 0.5;  // a larger β than the default keeps σ away from saturation here
    o.mask_formatting = variant != 1;
    o.nll_include_formatting = variant == 2;
    std::vector<float> dl(logits.size());
    auto m = DpoLoss(b, logits.data(), kV, ref, o, &ws, dl.data());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const double want = ReferenceLoss(b, x, ref, o);
    // Loss: fp32 logits, float64 sums: ≤ 1e-6 relative.
    EXPECT_NEAR(m->loss, want, 1e-6 * std::abs(want)) << "variant " << variant;
    auto fd = testref::FiniteDiff(
        x, [&](const std::vector<double>& xs) { return ReferenceLoss(b, xs, ref, o); });
    // fp32 analytic gradient vs float64 central differences (h = 1e-5):
    // ‖Δ‖/‖ref‖ ≤ 1e-5.
    EXPECT_LT(RelErr(dl, fd), 1e-5) << "variant " << variant;
  }
}

TEST(DpoLoss, NllTermAloneMatchesFiniteDifferences) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 13);
  std::vector<double> x(logits.begin(), logits.end());
  DpoOptions o;
  o.beta = 0.0;  // z ≡ 0: the DPO term is the constant ln 2, only the NLL has a gradient
  o.nll_alpha = 1.0;
  DpoWorkspace ws;
  std::vector<float> dl(logits.size());
  auto ref = SomeReference();
  auto m = DpoLoss(b, logits.data(), kV, ref, o, &ws, dl.data());
  ASSERT_TRUE(m.ok());
  auto fd = testref::FiniteDiff(
      x, [&](const std::vector<double>& xs) { return ReferenceLoss(b, xs, ref, o); });
  EXPECT_LT(RelErr(dl, fd), 1e-5);
  // Rejected positions carry no NLL gradient.
  for (int64_t i = 0; i < b.batch.size(); ++i) {
    if (b.flags[i] & kDpoRejected) {
      for (int64_t v = 0; v < kV; ++v) ASSERT_EQ(dl[i * kV + v], 0.0f);
    }
  }
}

TEST(DpoLoss, MaskedFormattingLogitsChangeNothing) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 14);
  auto changed = logits;
  int64_t touched = 0;
  for (int64_t i = 0; i < b.batch.size(); ++i) {
    if (b.flags[i] & kDpoFormatting) {
      for (int64_t v = 0; v < kV; ++v)
        changed[i * kV + v] += 3.0f * static_cast<float>(v % 5) - 4.0f;
      ++touched;
    }
  }
  ASSERT_EQ(touched, 7);  // 6 eot predictions + the 35 inside p1's chosen
  auto ref = SomeReference();
  DpoOptions o;  // defaults: masking on, NLL over the same tokens
  DpoWorkspace ws;
  std::vector<float> d1(logits.size()), d2(logits.size());
  auto a = DpoLoss(b, logits.data(), kV, ref, o, &ws, d1.data());
  auto c = DpoLoss(b, changed.data(), kV, ref, o, &ws, d2.data());
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ(a->loss, c->loss);
  EXPECT_EQ(a->nll, c->nll);
  EXPECT_EQ(d1, d2);  // bit-identical gradients
  // With masking off, the same change does move the loss.
  o.mask_formatting = false;
  auto a2 = DpoLoss(b, logits.data(), kV, ref, o, &ws, nullptr);
  auto c2 = DpoLoss(b, changed.data(), kV, ref, o, &ws, nullptr);
  EXPECT_NE(a2->loss, c2->loss);
  // NLL over formatting tokens too: the DPO term stays, the NLL moves.
  o.mask_formatting = true;
  o.nll_include_formatting = true;
  auto a3 = DpoLoss(b, logits.data(), kV, ref, o, &ws, nullptr);
  auto c3 = DpoLoss(b, changed.data(), kV, ref, o, &ws, nullptr);
  EXPECT_EQ(a3->dpo_loss, c3->dpo_loss);
  EXPECT_NE(a3->nll, c3->nll);
}

TEST(DpoLoss, MetricsFromHandSetLogProbs) {
  // Make the policy's sequence log-probs known: compute them, then set the
  // reference so that pair 0 and 2 prefer chosen by 1 and 3 nats, pair 1
  // prefers rejected by 2 nats.
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 15);
  DpoOptions o;
  DpoWorkspace ws;
  std::vector<SequenceLogProb> pol;
  ASSERT_TRUE(SequenceLogProbs(b, logits.data(), kV, o, &ws, &pol).ok());
  std::vector<SequenceLogProb> ref = {{pol[0].chosen - 1.0, pol[0].rejected},
                                      {pol[1].chosen, pol[1].rejected - 2.0},
                                      {pol[2].chosen - 2.0, pol[2].rejected + 1.0}};
  auto m = DpoLoss(b, logits.data(), kV, ref, o, &ws, nullptr);
  ASSERT_TRUE(m.ok());
  // rewards β·(π − ref): chosen (0.1, 0, 0.2), rejected (0, 0.2, −0.1)
  EXPECT_NEAR(m->chosen_reward, 0.3 / 3, 1e-9);
  EXPECT_NEAR(m->rejected_reward, 0.1 / 3, 1e-9);
  EXPECT_NEAR(m->margin, 0.2 / 3, 1e-9);
  EXPECT_NEAR(m->reward_accuracy, 2.0 / 3, 1e-12);
  const double want =
      (testref::Softplus(-0.1) + testref::Softplus(0.2) + testref::Softplus(-0.3)) / 3;
  EXPECT_NEAR(m->dpo_loss, want, 1e-6);
}

TEST(DpoLoss, InPlaceGradientEqualsSeparateBuffer) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 16);
  auto ref = SomeReference();
  DpoWorkspace ws;
  std::vector<float> dl(logits.size());
  auto a = DpoLoss(b, logits.data(), kV, ref, {}, &ws, dl.data());
  auto c = DpoLoss(b, logits.data(), kV, ref, {}, &ws, logits.data());
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ(a->loss, c->loss);
  EXPECT_EQ(dl, logits);
}

TEST(DpoLoss, BadInputsAreErrors) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 17);
  DpoWorkspace ws;
  std::vector<SequenceLogProb> two(2);
  auto r = DpoLoss(b, logits.data(), kV, two, {}, &ws, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expected 3 pairs"), std::string::npos);
  auto small_v = DpoLoss(b, logits.data(), 30, SomeReference(), {}, &ws, nullptr);  // target 36 ≥ V
  EXPECT_FALSE(small_v.ok());
}

TEST(ReferenceLogProbs, KeyedByPairIdAndTaggedWithModelAndMasking) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 18);
  DpoWorkspace ws;
  ReferenceLogProbs table("sha256:abc", /*mask_formatting=*/true);
  ASSERT_TRUE(table.AddBatch(b, logits.data(), kV, {}, &ws).ok());
  EXPECT_EQ(table.size(), 3u);
  // The same pairs packed in another order (other batch composition) gather
  // their own values.
  auto samples = Samples();
  std::vector<DpoSample> reversed(samples.rbegin(), samples.rend());
  DpoBatch b2;
  ASSERT_TRUE(PackDpo(reversed, 3, 24, &b2).ok());
  std::vector<SequenceLogProb> g1, g2;
  ASSERT_TRUE(table.Gather(b, &g1).ok());
  ASSERT_TRUE(table.Gather(b2, &g2).ok());
  EXPECT_EQ(g1[0].chosen, g2[2].chosen);
  EXPECT_EQ(g1[2].rejected, g2[0].rejected);
  DpoOptions unmasked;
  unmasked.mask_formatting = false;
  EXPECT_FALSE(table.AddBatch(b, logits.data(), kV, unmasked, &ws).ok());
  ReferenceLogProbs empty("sha256:abc", true);
  auto st = empty.Gather(b, &g1);
  ASSERT_TRUE(st.IsNotFound());
  EXPECT_NE(st.message().find("'p0'"), std::string::npos);
}

TEST(ReferenceLogProbs, SaveLoadRoundTripIsExact) {
  auto b = Pack();
  auto logits = RandomLogits(b.batch.size(), kV, 19);
  DpoWorkspace ws;
  ReferenceLogProbs table("sha256:def", /*mask_formatting=*/false);
  DpoOptions o;
  o.mask_formatting = false;
  ASSERT_TRUE(table.AddBatch(b, logits.data(), kV, o, &ws).ok());
  const std::string path =
      ::testing::TempDir() + "/herd_dpo_ref_" + std::to_string(::getpid()) + ".json";
  ASSERT_TRUE(table.Save(path).ok());
  auto back = ReferenceLogProbs::Load(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->model_hash(), "sha256:def");
  EXPECT_FALSE(back->mask_formatting());
  std::vector<SequenceLogProb> g1, g2;
  ASSERT_TRUE(table.Gather(b, &g1).ok());
  ASSERT_TRUE(back->Gather(b, &g2).ok());
  for (size_t p = 0; p < g1.size(); ++p) {
    EXPECT_EQ(g1[p].chosen, g2[p].chosen);  // bit-exact through JSON
    EXPECT_EQ(g1[p].rejected, g2[p].rejected);
  }
  {
    std::ofstream f(path);
    f << R"({"format": "herd.dpo_reference.v1", "model_hash": "x", "mask_formatting": true,
             "pairs": {"a": [1.0]}})";
  }
  auto bad = ReferenceLogProbs::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsDataLoss());
  EXPECT_NE(bad.status().message().find("pairs['a']"), std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace herd::train
