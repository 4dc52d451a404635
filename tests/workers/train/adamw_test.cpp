// AdamW against a float64 transcription of the torch.optim.AdamW update
// (relative error <= 1e-6 per element over 5 steps), the first-step size
// (|dp| = lr for Adam's normalised step), no-decay ranges; global-norm
// clipping; gradient accumulation equal to one big batch (relative
// Frobenius error <= 1e-5 on the gradient).
#include "workers/train/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "workers/model/llama.h"
#include "workers/train/grad_accum.h"
#include "workers/train/grad_clip.h"

namespace herd::train {
namespace {

TEST(AdamW, MatchesFloat64Reference) {
  const int64_t n = 257;
  AdamWOptions o;
  o.beta1 = 0.9f;
  o.beta2 = 0.95f;
  o.eps = 1e-8f;
  o.weight_decay = 0.1f;
  std::vector<std::pair<int64_t, int64_t>> nodecay = {{100, 20}, {250, 7}};
  AdamW opt(n, o, nodecay);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> p(n);
  for (auto& x : p) x = nd(rng);
  std::vector<double> pr(p.begin(), p.end()), m(n, 0), v(n, 0);
  for (int t = 1; t <= 5; ++t) {
    std::vector<float> g(n);
    for (auto& x : g) x = nd(rng);
    const float lr = 1e-2f * t;
    opt.Step(p.data(), g.data(), lr);
    for (int64_t i = 0; i < n; ++i) {
      const bool decay = !((i >= 100 && i < 120) || i >= 250);
      // torch: p *= 1 - lr*wd; m, v update; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
      if (decay) pr[i] *= 1.0 - static_cast<double>(lr) * o.weight_decay;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * static_cast<double>(g[i]);
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * static_cast<double>(g[i]) * g[i];
      const double bc1 = 1 - std::pow(static_cast<double>(o.beta1), t);
      const double bc2 = 1 - std::pow(static_cast<double>(o.beta2), t);
      pr[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + o.eps);
    }
  }
  EXPECT_EQ(opt.step(), 5);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(p[i], pr[i], 1e-6 * std::max(1.0, std::abs(pr[i])));
}

TEST(AdamW, FirstStepMovesEachParameterByLr) {
  AdamWOptions o;
  o.weight_decay = 0.0f;
  AdamW opt(3, o);
  std::vector<float> p = {1.0f, 1.0f, 1.0f}, g = {1e-3f, -5.0f, 0.0f};
  opt.Step(p.data(), g.data(), 0.1f);
  EXPECT_NEAR(p[0], 0.9f, 1e-5);  // bias-corrected m/sqrt(v) = sign(g)
  EXPECT_NEAR(p[1], 1.1f, 1e-6);
  EXPECT_EQ(p[2], 1.0f);
}

TEST(GradClip, ScalesToMaxNormOnlyAboveIt) {
  std::vector<float> g = {3.0f, 4.0f};
  EXPECT_NEAR(ClipGradNorm(g.data(), 2, 10.0), 5.0, 1e-12);
  EXPECT_EQ(g[0], 3.0f);
  EXPECT_NEAR(ClipGradNorm(g.data(), 2, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(g[0], 0.6f, 1e-7);
  EXPECT_NEAR(g[1], 0.8f, 1e-7);
  std::vector<float> bad = {1.0f, NAN};
  EXPECT_FALSE(std::isfinite(ClipGradNorm(bad.data(), 2, 1.0)));
  EXPECT_EQ(bad[0], 1.0f);  // untouched: the caller skips the step
}

TEST(GradAccumulation, TwoMicroBatchesEqualOneBatch) {
  model::LlamaConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 19;
  auto mr = model::LlamaModel::Create(c, 2, 9);
  ASSERT_TRUE(mr.ok());
  model::LlamaModel& m = **mr;
  m.InitRandom(3, 0.1f);
  std::mt19937 rng(4);
  model::PackedBatch both;
  both.Resize(2, 9);
  for (int64_t i = 0; i < 18; ++i) {
    both.tokens[i] = static_cast<int32_t>(rng() % 19);
    both.positions[i] = static_cast<int32_t>(i % 9);
    const bool pad = i % 9 >= (i < 9 ? 9 : 6);  // row 1 has 3 padding tokens
    both.segments[i] = pad ? -1 : 0;
    if (!pad && i % 9 != 8) {
      both.targets[i] = static_cast<int32_t>(rng() % 19);
      both.loss_weights[i] = 1.0f;
    }
  }
  auto run = [&](const model::PackedBatch& b, float scale) {
    EXPECT_TRUE(m.Forward(b).ok());
    const double loss = kernels::cpu::SoftmaxCrossEntropyInPlace(
        m.logits(), nullptr, b.targets.data(), b.loss_weights.data(), b.size(), 19, scale);
    EXPECT_TRUE(m.Backward(m.logits()).ok());
    double w = 0;
    for (float x : b.loss_weights) w += x;
    return std::pair<double, double>(w, loss);
  };
  // One batch: mean loss over its weighted tokens.
  double wt = 0;
  for (float x : both.loss_weights) wt += x;
  m.ZeroGrad();
  const double loss_big = run(both, static_cast<float>(1.0 / wt)).second / wt;
  std::vector<float> g_big(m.grads(), m.grads() + m.num_params());
  // Two micro-batches of one row each, through the accumulator.
  m.ZeroGrad();
  GradAccumulator acc(2);
  bool done = false;
  for (int r = 0; r < 2; ++r) {
    model::PackedBatch one;
    one.Resize(1, 9);
    for (int64_t i = 0; i < 9; ++i) {
      one.tokens[i] = both.tokens[r * 9 + i];
      one.positions[i] = both.positions[r * 9 + i];
      one.segments[i] = both.segments[r * 9 + i];
      one.targets[i] = both.targets[r * 9 + i];
      one.loss_weights[i] = both.loss_weights[r * 9 + i];
    }
    auto [w, l] = run(one, 1.0f);
    done = acc.Add(w, l);
  }
  EXPECT_TRUE(done);
  const double loss_acc = acc.Finish(m.grads(), m.num_params());
  EXPECT_NEAR(loss_acc, loss_big, 1e-6 * loss_big);
  double e = 0, r = 0;
  for (int64_t i = 0; i < m.num_params(); ++i) {
    e += (m.grads()[i] - g_big[i]) * static_cast<double>(m.grads()[i] - g_big[i]);
    r += static_cast<double>(g_big[i]) * g_big[i];
  }
  EXPECT_LE(std::sqrt(e / r), 1e-5);
  EXPECT_EQ(acc.seen(), 0);
}

}  // namespace
}  // namespace herd::train
