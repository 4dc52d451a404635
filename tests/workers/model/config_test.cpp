#include "workers/model/config.h"

#include <gtest/gtest.h>

#include <string>

namespace herd::model {
namespace {

const std::string kFixtureDir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/llama_tiny";

// transformers < 5 spelling: rope_theta + rope_scaling.
const char* kLegacy = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
  "hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 3,
  "num_attention_heads": 8, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
  "vocab_size": 264, "max_position_embeddings": 131072, "tie_word_embeddings": true,
  "bos_token_id": 256, "eos_token_id": [257, 260]
})";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

TEST(Config, ParsesTheHfFixture) {
  // Written by transformers 5 (rope_parameters spelling).
  auto r = LoadConfig(kFixtureDir + "/config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const LlamaConfig& c = *r;
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 96);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 101);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_FLOAT_EQ(c.rope_scaling->factor, 4.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling->low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling->high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 16);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.is_reward_model);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
}

TEST(Config, ParsesLegacyRopeScalingAndDefaults) {
  auto r = ParseConfigJson(kLegacy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->head_dim, 16);  // d / H when absent
  EXPECT_EQ(r->num_key_value_heads, 2);
  EXPECT_FLOAT_EQ(r->rope_theta, 500000.0f);
  ASSERT_TRUE(r->rope_scaling.has_value());
  EXPECT_FLOAT_EQ(r->rope_scaling->factor, 8.0f);
  EXPECT_EQ(r->rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_EQ(r->eos_token_id, 257);  // first of the list

  // Absent num_key_value_heads means multi-head attention (Hkv = H).
  auto mha = ParseConfigJson(Replace(kLegacy, R"("num_key_value_heads": 2,)", ""));
  ASSERT_TRUE(mha.ok()) << mha.status().ToString();
  EXPECT_EQ(mha->num_key_value_heads, 8);
  // rope_scaling null: no scaling; rope_parameters type default: none either.
  auto none = ParseConfigJson(Replace(kLegacy, R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},)",
                                      R"("rope_scaling": null, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},)"));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->rope_scaling.has_value());
  EXPECT_FLOAT_EQ(none->rope_theta, 10000.0f);
}

TEST(Config, RoundTripsThroughConfigToJson) {
  for (bool rm : {false, true}) {
    auto r = ParseConfigJson(kLegacy);
    ASSERT_TRUE(r.ok());
    LlamaConfig c = *r;
    c.is_reward_model = rm;
    c.rms_norm_eps = 1e-6f;
    c.head_dim = 32;  // not d / H: must be written explicitly
    const std::string text = ConfigToJson(c, "bfloat16");
    EXPECT_NE(text.find("\"rms_norm_eps\": 1e-06"), std::string::npos) << text;
    EXPECT_NE(text.find("\"torch_dtype\": \"bfloat16\""), std::string::npos);
    auto back = ParseConfigJson(text);
    ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << text;
    EXPECT_EQ(back->hidden_size, c.hidden_size);
    EXPECT_EQ(back->intermediate_size, c.intermediate_size);
    EXPECT_EQ(back->num_hidden_layers, c.num_hidden_layers);
    EXPECT_EQ(back->num_attention_heads, c.num_attention_heads);
    EXPECT_EQ(back->num_key_value_heads, c.num_key_value_heads);
    EXPECT_EQ(back->head_dim, 32);
    EXPECT_EQ(back->rms_norm_eps, c.rms_norm_eps);  // exact: shortest float repr
    EXPECT_EQ(back->rope_theta, c.rope_theta);
    ASSERT_TRUE(back->rope_scaling.has_value());
    EXPECT_EQ(back->rope_scaling->factor, c.rope_scaling->factor);
    EXPECT_EQ(back->rope_scaling->original_max_position_embeddings,
              c.rope_scaling->original_max_position_embeddings);
    EXPECT_EQ(back->vocab_size, c.vocab_size);
    EXPECT_EQ(back->max_position_embeddings, c.max_position_embeddings);
    EXPECT_EQ(back->tie_word_embeddings, c.tie_word_embeddings);
    EXPECT_EQ(back->bos_token_id, c.bos_token_id);
    EXPECT_EQ(back->eos_token_id, c.eos_token_id);
    EXPECT_EQ(back->is_reward_model, rm);
  }
}

void ExpectError(const std::string& text, const std::string& needle) {
  auto r = ParseConfigJson(text);
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message '" << r.status().message() << "' lacks '" << needle << "'";
}

TEST(Config, ErrorsNameTheField) {
  ExpectError(Replace(kLegacy, R"("hidden_size": 128,)", ""), "field 'hidden_size' missing");
  ExpectError(Replace(kLegacy, R"("vocab_size": 264,)", ""), "field 'vocab_size' missing");
  ExpectError(Replace(kLegacy, R"("factor": 8.0)", R"("factor": "8")"),
              "config.json: field 'rope_scaling.factor' must be a number");
  ExpectError(Replace(kLegacy, R"("factor": 8.0, )", ""), "field 'rope_scaling.factor' missing");
  ExpectError(Replace(kLegacy, R"("rope_type": "llama3")", R"("rope_type": "yarn")"),
              "field 'rope_scaling.rope_type'");
  ExpectError(Replace(kLegacy, R"("hidden_act": "silu")", R"("hidden_act": "gelu")"),
              "field 'hidden_act'");
  ExpectError(Replace(kLegacy, R"(["LlamaForCausalLM"])", R"(["MistralForCausalLM"])"),
              "field 'architectures'");
  ExpectError(Replace(kLegacy, R"("num_key_value_heads": 2)", R"("num_key_value_heads": 3)"),
              "field 'num_key_value_heads' must divide");
  ExpectError(Replace(kLegacy, R"("num_hidden_layers": 3)", R"("num_hidden_layers": 2.5)"),
              "field 'num_hidden_layers' must be an integer");
  ExpectError(Replace(kLegacy, R"("intermediate_size": 352)", R"("intermediate_size": 0)"),
              "field 'intermediate_size' must be positive");
  ExpectError(Replace(kLegacy, R"("tie_word_embeddings": true)", R"("tie_word_embeddings": 1)"),
              "field 'tie_word_embeddings'");
  ExpectError(Replace(kLegacy, R"("bos_token_id": 256)", R"("bos_token_id": 999)"),
              "field 'bos_token_id'");
  ExpectError(Replace(kLegacy, R"("high_freq_factor": 4.0)", R"("high_freq_factor": 1.0)"),
              "field 'rope_scaling.high_freq_factor'");
  ExpectError(Replace(kLegacy, R"("num_attention_heads": 8,)",
                      R"("num_attention_heads": 8, "head_dim": 15,)"),
              "field 'head_dim' must be even");
  ExpectError(Replace(kLegacy, R"("model_type": "llama")", R"("model_type": "gpt2")"),
              "field 'model_type'");
  ExpectError("{not json", "not valid JSON");
  ExpectError("[1, 2]", "top level");
}

TEST(Config, LoadConfigNamesTheFile) {
  auto r = LoadConfig("/nonexistent/dir/config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/dir/config.json"), std::string::npos);
}

}  // namespace
}  // namespace herd::model
