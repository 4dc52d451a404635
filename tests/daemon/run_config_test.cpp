#include "daemon/run_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace herd::daemon {
namespace {

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(RunConfig, ShippedConfigsParse) {
  for (const char* name : {"tiny.json", "llama3-8b.json"}) {
    auto c = ParseRunConfig(ReadFile(std::string(HERD_SOURCE_DIR) + "/configs/" + name));
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().ToString();
    EXPECT_EQ(c->rounds, 6) << name;
    EXPECT_EQ(c->sft.variants.size(), 2u) << name;
    EXPECT_DOUBLE_EQ(c->dpo.beta, 0.1) << name;
    EXPECT_DOUBLE_EQ(c->dpo.nll_alpha, 0.2) << name;
  }
}

TEST(RunConfig, PaperDefaults) {
  auto c = ParseRunConfig(R"({"name": "r", "base_checkpoint": "/m"})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rounds, 6);
  EXPECT_DOUBLE_EQ(c->sft.hp.lr, 1e-5);
  EXPECT_DOUBLE_EQ(c->dpo.hp.lr, 1e-5);
  EXPECT_TRUE(c->dpo.mask_formatting);
  ASSERT_EQ(c->reward_model.strengths.size(), 2u);
  EXPECT_EQ(c->reward_model.strengths[0], "significantly_better");
  ASSERT_EQ(c->sft.variants.size(), 1u);
  EXPECT_DOUBLE_EQ(c->sft.average_weights[0], 1.0);
}

TEST(RunConfig, VariantsOverrideStageHparamsAndWeightsNormalise) {
  auto c = ParseRunConfig(R"({"name": "r", "base_checkpoint": "/m",
    "sft": {"lr": 2e-5, "steps": 10, "variants": [{"name": "a"}, {"name": "b", "lr": 4e-5}],
            "average_weights": [1, 3]}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->sft.variants.size(), 2u);
  EXPECT_DOUBLE_EQ(c->sft.variants[0].hp.lr, 2e-5);
  EXPECT_DOUBLE_EQ(c->sft.variants[1].hp.lr, 4e-5);
  EXPECT_EQ(c->sft.variants[1].hp.steps, 10);
  EXPECT_DOUBLE_EQ(c->sft.average_weights[0], 0.25);
  EXPECT_DOUBLE_EQ(c->sft.average_weights[1], 0.75);
}

struct BadCase {
  const char* json;
  const char* message;  // the exact error text
};

class RunConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(RunConfigErrors, NameTheField) {
  auto c = ParseRunConfig(GetParam().json);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    All, RunConfigErrors,
    ::testing::Values(
        BadCase{"{", "config: not valid JSON"},
        BadCase{"[]", "config: must be an object"},
        BadCase{R"({"base_checkpoint": "/m"})", "name: required field missing"},
        BadCase{R"({"name": "r"})", "base_checkpoint: required field missing"},
        BadCase{R"({"name": "a b", "base_checkpoint": "/m"})", "name: must match [A-Za-z0-9._-]{1,64}"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "rounds": "6"})", "rounds: must be an integer"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "rounds": 0})", "rounds: must be in [1, 100], got 0"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "colour": 1})", "colour: unknown field"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "rejection_sampling": {"temprature": 1}})",
                "rejection_sampling.temprature: unknown field"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "rejection_sampling": {"k": 0}})",
                "rejection_sampling.k: must be in [1, 64], got 0"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "dpo": {"variants": [{"lr": "x"}]}})",
                "dpo.variants[0].lr: must be a number"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "dpo": {"variants": [{"name": "a"}, {"name": "a"}]}})",
                "dpo.variants: duplicate name 'a'"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "sft": {"variants": [{}], "average_weights": [1, 2]}})",
                "sft.average_weights: has 2 entries for 1 variants"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "reward_model": {"strengths": ["much_better"]}})",
                "reward_model.strengths[0]: unknown value 'much_better'"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "sft": {"schedule": "step"}})",
                "sft.schedule: must be \"cosine\" or \"linear\""},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "workers": {"device": "tpu"}})",
                "workers.device: must be \"cpu\" or \"cuda\""},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "annotation": {"comparisons_per_round": 4, "min_answers": 5}})",
                "annotation.min_answers: must be <= comparisons_per_round (4)"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "reward_model": {"init": "last"}})",
                "reward_model.init: must be \"base\" or \"previous\""},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "reward_model": {"averaging": "best"}})",
                "reward_model.averaging: must be \"uniform\" or \"greedy\""},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "dpo": {"averaging": "greedy"}})",
                "dpo.averaging: \"greedy\" chooses by reward-model pair accuracy, so only reward_model supports it"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "reward_model": {"averaging": "greedy", "val_fraction": 0}})",
                "reward_model.val_fraction: must be > 0 when averaging is \"greedy\""},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "chat_format": "vicuna"})",
                "chat_format: must be one of llama3, chatml"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m\u0000/../etc"})",
                "base_checkpoint: must not contain a NUL byte"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "tokenizer": "/t\u0000x"})",
                "tokenizer: must not contain a NUL byte"},
        BadCase{R"({"name": "r", "base_checkpoint": "/m", "reward_model": {"averaging": "greedy", "held_out_fraction": 0.5, "val_fraction": 0.5}})",
                "reward_model.val_fraction: held_out_fraction + val_fraction must be < 1"}));

TEST(RunConfig, CanonicalJsonRoundTrips) {
  for (const char* name : {"tiny.json", "smollm2-135m.json"}) {
    auto c = ParseRunConfig(ReadFile(std::string(HERD_SOURCE_DIR) + "/configs/" + name));
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().ToString();
    std::string j1 = RunConfigToJson(*c);
    auto c2 = ParseRunConfig(j1);
    ASSERT_TRUE(c2.ok()) << c2.status().ToString();
    EXPECT_EQ(RunConfigToJson(*c2), j1);
  }
  // The text overrides survive the round trip.
  auto t = ParseRunConfig(R"({"name": "r", "base_checkpoint": "/m", "tokenizer": "/t.json", "chat_format": "chatml"})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto t2 = ParseRunConfig(RunConfigToJson(*t));
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->tokenizer, "/t.json");
  EXPECT_EQ(t2->chat_format, "chatml");
}

}  // namespace
}  // namespace herd::daemon
