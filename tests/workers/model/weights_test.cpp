// ParamLayout: HF names, shapes and order; one contiguous buffer with the
// fused q|k|v and gate|up blocks; tied / reward-model heads; views of a
// mirror buffer; config errors naming the field.
#include "workers/model/weights.h"

#include <gtest/gtest.h>

#include <set>

namespace herd::model {
namespace {

LlamaConfig Cfg() {
  LlamaConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 50;
  return c;
}

TEST(ParamLayout, HfNamesShapesAndContiguousOrder) {
  auto r = ParamLayout::Create(Cfg());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ParamLayout& p = *r;
  EXPECT_EQ(p.config().head_dim, 4);  // default d / H
  const auto& t = p.tensors();
  ASSERT_EQ(t.size(), 1u + 3u * 9u + 2u);
  EXPECT_EQ(t[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{50, 16}));
  const char* per_layer[] = {
      "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
      "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
      "mlp.down_proj.weight",    "input_layernorm.weight",  "post_attention_layernorm.weight"};
  const std::vector<int64_t> shapes[] = {{16, 16}, {8, 16},  {8, 16}, {16, 16}, {24, 16},
                                         {24, 16}, {16, 24}, {16},    {16}};
  for (int l = 0; l < 3; ++l)
    for (int j = 0; j < 9; ++j) {
      const auto& s = t[1 + l * 9 + j];
      EXPECT_EQ(s.name, "model.layers." + std::to_string(l) + "." + per_layer[j]);
      EXPECT_EQ(s.shape, shapes[j]) << s.name;
    }
  EXPECT_EQ(t[28].name, "model.norm.weight");
  EXPECT_EQ(t[29].name, "lm_head.weight");
  // Contiguous, no gaps or overlaps, numel = sum.
  int64_t off = 0;
  for (const auto& s : t) {
    EXPECT_EQ(s.offset, off) << s.name;
    off += s.numel();
  }
  EXPECT_EQ(p.numel(), off);
  // Fused blocks: k follows q, v follows k; up follows gate.
  for (int l = 0; l < 3; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    EXPECT_EQ(p.Find(pre + "self_attn.q_proj.weight")->offset, p.layer(l).qkv);
    EXPECT_EQ(p.Find(pre + "self_attn.k_proj.weight")->offset, p.layer(l).qkv + 16 * 16);
    EXPECT_EQ(p.Find(pre + "self_attn.v_proj.weight")->offset, p.layer(l).qkv + 16 * 16 + 8 * 16);
    EXPECT_EQ(p.Find(pre + "mlp.up_proj.weight")->offset, p.layer(l).gate_up + 24 * 16);
  }
  EXPECT_EQ(p.lm_head(), p.Find("lm_head.weight")->offset);
  EXPECT_EQ(p.score(), -1);
  EXPECT_EQ(p.Find("nope"), nullptr);
}

TEST(ParamLayout, TiedAndRewardHeads) {
  LlamaConfig c = Cfg();
  c.tie_word_embeddings = true;
  auto tied = ParamLayout::Create(c);
  ASSERT_TRUE(tied.ok());
  EXPECT_EQ(tied->Find("lm_head.weight"), nullptr);
  EXPECT_EQ(tied->lm_head(), tied->embed());
  c.tie_word_embeddings = false;
  c.is_reward_model = true;
  auto rm = ParamLayout::Create(c);
  ASSERT_TRUE(rm.ok());
  EXPECT_EQ(rm->Find("lm_head.weight"), nullptr);
  ASSERT_NE(rm->Find("score.weight"), nullptr);
  EXPECT_EQ(rm->Find("score.weight")->shape, (std::vector<int64_t>{1, 16}));
  EXPECT_EQ(rm->tensors().back().name, "score.weight");
}

TEST(ParamLayout, ViewsMirrorAnyBuffer) {
  auto r = ParamLayout::Create(Cfg());
  ASSERT_TRUE(r.ok());
  FloatBuffer params(r->numel()), grads(r->numel());
  auto pv = r->Views(params.data());
  auto gv = r->Views(grads.data());
  ASSERT_EQ(pv.size(), gv.size());
  for (size_t i = 0; i < pv.size(); ++i) {
    EXPECT_EQ(pv[i].name, gv[i].name);
    EXPECT_EQ(pv[i].data - params.data(), gv[i].data - grads.data());
    EXPECT_EQ(pv[i].numel(), r->tensors()[i].numel());
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(params.data()) % 64, 0u);
  InitParams(*r, params.data(), 1);
  const LayerTensors lt = r->Layer(1, params.data());
  EXPECT_EQ(lt.input_norm[0], 1.0f);  // norms start at 1
  EXPECT_NE(lt.qkv[0], 0.0f);
  // No-decay ranges: exactly the 1-D tensors.
  std::set<int64_t> nd;
  for (auto [o, n] : r->NoDecayRanges()) nd.insert(o);
  for (const auto& t : r->tensors())
    EXPECT_EQ(nd.count(t.offset) == 1, t.shape.size() == 1) << t.name;
}

TEST(ParamLayout, ConfigErrorsNameTheField) {
  auto expect_field = [](LlamaConfig c, const char* field) {
    auto r = ParamLayout::Create(c);
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  };
  LlamaConfig c = Cfg();
  c.hidden_size = 0;
  expect_field(c, "hidden_size");
  c = Cfg();
  c.num_key_value_heads = 3;
  expect_field(c, "num_key_value_heads");
  c = Cfg();
  c.head_dim = 5;
  expect_field(c, "head_dim");
  c = Cfg();
  c.vocab_size = -1;
  expect_field(c, "vocab_size");
  c = Cfg();
  c.rope_scaling = RopeScaling{};
  c.rope_scaling->high_freq_factor = 0.5f;
  expect_field(c, "rope_scaling.high_freq_factor");
}

}  // namespace
}  // namespace herd::model
