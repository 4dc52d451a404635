// Parity with an independent implementation: the engine loads the tiny HF
// checkpoint in tests/reference/fixtures/llama_tiny (GQA 4/2 heads, untied
// head, llama3 rope scaling that changes every frequency, made by
// tests/reference/make_llama_fixture.py) and reproduces transformers'
// float64 logits, loss and the gradient of every parameter.
// Tolerance: relative Frobenius error <= 1e-4 per tensor (fp32 engine vs.
// float64 reference).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "workers/model/checkpoint.h"
#include "workers/model/llama.h"
#include "workers/model/safetensors.h"

namespace herd::model {
namespace {

const std::string kDir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/llama_tiny";

double RelErr(const float* got, const std::vector<float>& want) {
  double e = 0, r = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    e += d * d;
    r += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(e / r);
}

TEST(HfParity, LogitsLossAndEveryGradient) {
  auto cfg = LoadCheckpointConfig(kDir);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_TRUE(cfg->rope_scaling.has_value());
  EXPECT_EQ(cfg->num_key_value_heads * 2, cfg->num_attention_heads);
  EXPECT_FALSE(cfg->tie_word_embeddings);

  auto fx = SafetensorsFile::Open(kDir + "/fixture.safetensors");
  ASSERT_TRUE(fx.ok()) << fx.status().ToString();
  const TensorInfo* ids = fx->Find("input_ids");
  ASSERT_NE(ids, nullptr);
  ASSERT_EQ(ids->shape.size(), 2u);
  const int64_t B = ids->shape[0], T = ids->shape[1], N = B * T, V = cfg->vocab_size;
  std::vector<int64_t> tok(N), pos(N), tgt(N);
  ASSERT_TRUE(fx->ReadI64("input_ids", tok.data(), N).ok());
  ASSERT_TRUE(fx->ReadI64("position_ids", pos.data(), N).ok());
  ASSERT_TRUE(fx->ReadI64("targets", tgt.data(), N).ok());
  std::vector<float> want_logits(N * V), want_loss(1);
  ASSERT_TRUE(fx->ReadF32("logits", want_logits.data(), N * V).ok());
  ASSERT_TRUE(fx->ReadF32("loss", want_loss.data(), 1).ok());

  auto mr = LlamaModel::Create(*cfg, B, T);
  ASSERT_TRUE(mr.ok()) << mr.status().ToString();
  LlamaModel& m = **mr;
  ASSERT_TRUE(LoadCheckpointInto(kDir, m.ParamViews()).ok());

  PackedBatch b;
  b.Resize(B, T);
  double valid = 0;
  for (int64_t i = 0; i < N; ++i) {
    b.tokens[i] = static_cast<int32_t>(tok[i]);
    b.positions[i] = static_cast<int32_t>(pos[i]);
    b.segments[i] = 0;  // each row one causal sequence
    b.targets[i] = static_cast<int32_t>(tgt[i]);
    b.loss_weights[i] = tgt[i] >= 0 ? 1.0f : 0.0f;
    valid += b.loss_weights[i];
  }
  m.ZeroGrad();
  ASSERT_TRUE(m.Forward(b).ok());
  const double logit_err = RelErr(m.logits(), want_logits);
  EXPECT_LE(logit_err, 1e-4);
  std::printf("hf parity: logits rel err %.3g\n", logit_err);
  const double loss = kernels::cpu::SoftmaxCrossEntropyInPlace(
                          m.logits(), nullptr, b.targets.data(), b.loss_weights.data(), N, V,
                          static_cast<float>(1.0 / valid)) /
                      valid;
  EXPECT_NEAR(loss, want_loss[0], 1e-4 * want_loss[0]);
  ASSERT_TRUE(m.Backward(m.logits()).ok());

  double worst = 0;
  std::string worst_name;
  int n = 0;
  for (const ParamView& g : m.GradViews()) {
    std::vector<float> want(g.numel());
    ASSERT_TRUE(fx->ReadF32("grad." + g.name, want.data(), g.numel()).ok()) << g.name;
    const double e = RelErr(g.data, want);
    EXPECT_LE(e, 1e-4) << g.name;
    if (e > worst) worst = e, worst_name = g.name;
    ++n;
  }
  EXPECT_EQ(n, 1 + 9 * cfg->num_hidden_layers + 2);
  std::printf("hf parity: loss %.7f vs %.7f; %d gradients, worst rel err %.3g (%s)\n", loss,
              want_loss[0], n, worst, worst_name.c_str());
}

}  // namespace
}  // namespace herd::model
