#include "workers/train/averaging.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "workers/model/config.h"
#include "workers/model/safetensors.h"
#include "common/sha256.h"

namespace herd::train {
namespace {
namespace fs = std::filesystem;

model::LlamaConfig TinyConfig() {
  model::LlamaConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 4;
  c.vocab_size = 11;
  return c;
}

class AveragingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("herd_avg_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A checkpoint dir with config.json and three tensors of seeded values.
  std::string Make(const std::string& name, uint64_t seed, const model::LlamaConfig& c,
                   uint64_t shard_bytes = 0, bool drop_last = false,
                   std::vector<int64_t> norm_shape = {8}) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << model::ConfigToJson(c);
    std::ofstream(dir / "tokenizer.json") << "{\"model\": \"byte\"}";
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    auto& vals = values_[name];
    vals.clear();
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
        {"model.embed_tokens.weight", {11, 8}},
        {"model.norm.weight", norm_shape},
        {"lm_head.weight", {11, 8}}};
    if (drop_last) shapes.pop_back();
    for (auto& [n, s] : shapes) {
      int64_t numel = 1;
      for (auto x : s) numel *= x;
      auto& v = vals[n];
      v.resize(numel);
      for (auto& x : v) x = d(rng);
    }
    std::vector<model::TensorSpec> specs;
    for (auto& [n, s] : shapes) specs.push_back({n, s, vals[n].data()});
    EXPECT_TRUE(
        model::WriteSafetensorsDir(dir.string(), specs, model::DType::kF32, shard_bytes).ok());
    return dir.string();
  }

  std::vector<float> Read(const std::string& dir, const std::string& tensor) {
    auto set = model::SafetensorsSet::Open(dir);
    EXPECT_TRUE(set.ok()) << set.status().ToString();
    const auto* e = set->Find(tensor);
    EXPECT_NE(e, nullptr);
    std::vector<float> v(e->info->numel());
    EXPECT_TRUE(set->ReadF32(tensor, v.data(), e->info->numel()).ok());
    return v;
  }

  fs::path root_;
  std::map<std::string, std::map<std::string, std::vector<float>>> values_;
};

TEST_F(AveragingTest, TwoCheckpointsGiveTheElementwiseMean) {
  auto a = Make("a", 1, TinyConfig());
  auto b = Make("b", 2, TinyConfig(), /*shard_bytes=*/400);  // a sharded input works too
  ASSERT_TRUE(fs::exists(fs::path(b) / "model.safetensors.index.json"));
  const auto out = (root_ / "avg").string();
  auto r = AverageCheckpoints({{a, 1.0}, {b, 1.0}}, out);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tensors, 3);
  EXPECT_EQ(r->parameters, 11 * 8 * 2 + 8);
  for (const char* t : {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}) {
    auto got = Read(out, t);
    const auto& va = values_["a"][t];
    const auto& vb = values_["b"][t];
    ASSERT_EQ(got.size(), va.size());
    for (size_t k = 0; k < got.size(); ++k) {
      // Float64 accumulation then one rounding to fp32: within half an ulp
      // of the exact mean, so 1e-7 relative (plus 1e-12 absolute) suffices.
      const double want = 0.5 * (static_cast<double>(va[k]) + vb[k]);
      ASSERT_NEAR(got[k], want, 1e-7 * std::abs(want) + 1e-12) << t << "[" << k << "]";
    }
  }
  // An HF directory: config and tokenizer carried over, provenance beside it.
  EXPECT_TRUE(model::LoadConfig((fs::path(out) / "config.json").string()).ok());
  EXPECT_TRUE(fs::exists(fs::path(out) / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  std::ifstream pf(fs::path(out) / "averaging.json");
  auto prov = nlohmann::json::parse(pf);
  ASSERT_EQ(prov["inputs"].size(), 2u);
  EXPECT_DOUBLE_EQ(prov["inputs"][1]["normalized_weight"].get<double>(), 0.5);
  EXPECT_EQ(prov["inputs"][0]["files"][0]["sha256"],
            FileSha256((fs::path(a) / "model.safetensors").string()).value());
  EXPECT_GE(prov["inputs"][1]["files"].size(), 2u);  // every shard hashed
  EXPECT_EQ(prov["output"]["files"][0]["sha256"], r->output_sha256);
  EXPECT_EQ(r->output_sha256, FileSha256(out + "/model.safetensors").value());
}

TEST_F(AveragingTest, WeightedMeanOfThree) {
  auto a = Make("a", 3, TinyConfig());
  auto b = Make("b", 4, TinyConfig());
  auto c = Make("c", 5, TinyConfig());
  const auto out = (root_ / "avg").string();
  // Weights 2:1:1, normalised to 0.5, 0.25, 0.25.
  auto r = AverageCheckpoints({{a, 2.0}, {b, 1.0}, {c, 1.0}}, out);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->weights, (std::vector<double>{0.5, 0.25, 0.25}));
  auto got = Read(out, "lm_head.weight");
  for (size_t k = 0; k < got.size(); ++k) {
    const double want = 0.5 * values_["a"]["lm_head.weight"][k] +
                        0.25 * values_["b"]["lm_head.weight"][k] +
                        0.25 * values_["c"]["lm_head.weight"][k];
    ASSERT_NEAR(got[k], want, 1e-7 * std::abs(want) + 1e-12);
  }
  // BF16 output: within bf16 rounding (2^-8 relative).
  const auto out16 = (root_ / "avg16").string();
  AverageOptions o16;
  o16.dtype = model::DType::kBF16;
  ASSERT_TRUE(AverageCheckpoints({{a, 1.0}, {b, 1.0}}, out16, o16).ok());
  auto g16 = Read(out16, "model.norm.weight");
  for (size_t k = 0; k < g16.size(); ++k) {
    const double want =
        0.5 * (values_["a"]["model.norm.weight"][k] + values_["b"]["model.norm.weight"][k]);
    ASSERT_NEAR(g16[k], want, std::abs(want) * (1.0 / 256) + 1e-30);
  }
}

TEST_F(AveragingTest, MismatchesAreClearErrorsAndLeaveNothing) {
  auto a = Make("a", 1, TinyConfig());
  auto other = TinyConfig();
  other.rope_theta = 500000.0f;
  auto b = Make("b", 2, other);
  const auto out = (root_ / "avg").string();
  auto r = AverageCheckpoints({{a, 1.0}, {b, 1.0}}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("inputs[1]"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("rope_theta"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(out));

  auto missing = Make("m", 3, TinyConfig(), 0, /*drop_last=*/true);
  r = AverageCheckpoints({{a, 1.0}, {missing, 1.0}}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'lm_head.weight' missing"), std::string::npos)
      << r.status().message();
  r = AverageCheckpoints({{missing, 1.0}, {a, 1.0}}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not in inputs[0]"), std::string::npos);

  auto shaped = Make("s", 4, TinyConfig(), 0, false, /*norm_shape=*/{1, 8});
  r = AverageCheckpoints({{a, 1.0}, {shaped, 1.0}}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'model.norm.weight' has shape (1, 8)"), std::string::npos)
      << r.status().message();

  EXPECT_FALSE(AverageCheckpoints({}, out).ok());
  r = AverageCheckpoints({{a, -1.0}, {a, 1.0}}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("inputs[0]"), std::string::npos);
  EXPECT_FALSE(AverageCheckpoints({{a, 0.0}}, out).ok());
  r = AverageCheckpoints({{(root_ / "nope").string(), 1.0}}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));

  // An existing output is refused unless overwrite.
  ASSERT_TRUE(AverageCheckpoints({{a, 1.0}}, out).ok());
  auto again = AverageCheckpoints({{a, 1.0}}, out);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  AverageOptions ow;
  ow.overwrite = true;
  EXPECT_TRUE(AverageCheckpoints({{a, 1.0}}, out, ow).ok());
}

}  // namespace
}  // namespace herd::train
