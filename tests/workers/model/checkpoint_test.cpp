#include "workers/model/checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

namespace fs = std::filesystem;

const std::string kFixtureDir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/llama_tiny";

// Parameters held the way an engine would: one flat buffer, named views.
struct Params {
  std::vector<float> buffer;
  std::vector<ParamView> views;
};

Params MakeParams(const LlamaConfig& c, uint32_t seed) {
  Params p;
  const auto shapes = LlamaTensorShapes(c);
  size_t total = 0;
  for (const auto& t : shapes) total += static_cast<size_t>(ParamView{t.name, t.shape, nullptr}.numel());
  p.buffer.resize(total);
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  for (float& x : p.buffer) x = nd(g);
  size_t off = 0;
  for (const auto& t : shapes) {
    p.views.push_back(ParamView{t.name, t.shape, p.buffer.data() + off});
    off += static_cast<size_t>(p.views.back().numel());
  }
  return p;
}

LlamaConfig TinyConfig() {
  LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 37;
  c.rope_theta = 500000.0f;
  c.rope_scaling = RopeScaling{};
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

std::string ReadText(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("herd-ckpt-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  // Only the checkpoint itself may remain in root_: no temp siblings.
  void ExpectOnlyEntries(size_t n) {
    size_t count = 0;
    for (const auto& e : fs::directory_iterator(root_)) {
      ++count;
      EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
    }
    EXPECT_EQ(count, n);
  }
  fs::path root_;
};

TEST(LlamaTensorShapes, MatchTheHfCheckpoint) {
  // The fixture was written by transformers' save_pretrained: an independent
  // source for the tensor names and shapes.
  auto c = LoadCheckpointConfig(kFixtureDir);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto f = SafetensorsFile::Open(kFixtureDir + "/model.safetensors");
  ASSERT_TRUE(f.ok());
  const auto shapes = LlamaTensorShapes(*c);
  ASSERT_EQ(shapes.size(), f->tensors().size());
  for (const auto& t : shapes) {
    const TensorInfo* info = f->Find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->shape, t.shape) << t.name;
  }
  LlamaConfig tied = *c;
  tied.tie_word_embeddings = true;
  EXPECT_EQ(LlamaTensorShapes(tied).size(), shapes.size() - 1);
  EXPECT_EQ(LlamaTensorShapes(tied).back().name, "model.norm.weight");
  LlamaConfig rm = *c;
  rm.is_reward_model = true;
  EXPECT_EQ(LlamaTensorShapes(rm).back().name, "score.weight");
  EXPECT_EQ(LlamaTensorShapes(rm).back().shape, (std::vector<int64_t>{1, 64}));
}

TEST_F(CheckpointTest, LoadsTheHfFixture) {
  auto c = LoadCheckpointConfig(kFixtureDir);
  ASSERT_TRUE(c.ok());
  Params p = MakeParams(*c, 1);
  ASSERT_TRUE(LoadCheckpointInto(kFixtureDir, p.views).ok());
  auto f = SafetensorsFile::Open(kFixtureDir + "/model.safetensors");
  ASSERT_TRUE(f.ok());
  for (const ParamView& v : p.views) {
    std::vector<float> want(static_cast<size_t>(v.numel()));
    ASSERT_TRUE(f->ReadF32(v.name, want.data(), v.numel()).ok());
    EXPECT_EQ(std::memcmp(want.data(), v.data, want.size() * 4), 0) << v.name;
  }
}

TEST_F(CheckpointTest, F32SaveLoadIsBitExact) {
  const LlamaConfig c = TinyConfig();
  Params a = MakeParams(c, 2);
  SaveOptions o;
  o.tokenizer_json = "{\"version\": \"1.0\"}";
  o.tokenizer_config_json = "{}";
  o.generation_eos_token_ids = {2, 5};
  const std::string dir = (root_ / "ckpt").string();
  ASSERT_TRUE(SaveCheckpoint(dir, c, a.views, DType::kF32, o).ok());
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  }
  EXPECT_NE(ReadText(fs::path(dir) / "generation_config.json").find("\"eos_token_id\": [\n    2,\n    5\n  ]"),
            std::string::npos) << ReadText(fs::path(dir) / "generation_config.json");
  ExpectOnlyEntries(1);
  auto c2 = LoadCheckpointConfig(dir);
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  EXPECT_EQ(c2->hidden_size, c.hidden_size);
  EXPECT_EQ(c2->head_dim, c.head_dim);
  EXPECT_TRUE(c2->rope_scaling.has_value());

  Params b = MakeParams(c, 3);
  ASSERT_TRUE(LoadCheckpointInto(dir, b.views).ok());
  EXPECT_EQ(std::memcmp(a.buffer.data(), b.buffer.data(), a.buffer.size() * 4), 0);
}

TEST_F(CheckpointTest, Bf16SaveLoadIsWithinRounding) {
  const LlamaConfig c = TinyConfig();
  Params a = MakeParams(c, 4);
  const std::string dir = (root_ / "bf16").string();
  ASSERT_TRUE(SaveCheckpoint(dir, c, a.views, DType::kBF16).ok());
  EXPECT_NE(ReadText(fs::path(dir) / "config.json").find("\"torch_dtype\": \"bfloat16\""),
            std::string::npos);
  Params b = MakeParams(c, 5);
  ASSERT_TRUE(LoadCheckpointInto(dir, b.views).ok());
  for (size_t i = 0; i < a.buffer.size(); ++i) {
    // bf16 rounding: relative error <= 2^-8, and exactly the RNE value.
    ASSERT_LE(std::fabs(a.buffer[i] - b.buffer[i]), std::ldexp(std::fabs(a.buffer[i]), -8)) << i;
    ASSERT_EQ(b.buffer[i], Bf16ToFloat(FloatToBf16(a.buffer[i]))) << i;
  }
}

TEST_F(CheckpointTest, ShardedSaveLoadIsBitExact) {
  const LlamaConfig c = TinyConfig();
  Params a = MakeParams(c, 6);
  SaveOptions o;
  o.max_shard_bytes = 8192;
  const std::string dir = (root_ / "sharded").string();
  ASSERT_TRUE(SaveCheckpoint(dir, c, a.views, DType::kF32, o).ok());
  EXPECT_TRUE(fs::exists(fs::path(dir) / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "model.safetensors"));
  Params b = MakeParams(c, 7);
  ASSERT_TRUE(LoadCheckpointInto(dir, b.views).ok());
  EXPECT_EQ(a.buffer, b.buffer);
}

TEST_F(CheckpointTest, ExistingDirIsRefusedOrSwappedWhole) {
  const LlamaConfig c = TinyConfig();
  Params a = MakeParams(c, 8), b = MakeParams(c, 9);
  const std::string dir = (root_ / "ckpt").string();
  ASSERT_TRUE(SaveCheckpoint(dir, c, a.views).ok());
  Status s = SaveCheckpoint(dir, c, b.views);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  SaveOptions o;
  o.overwrite = true;
  o.max_shard_bytes = 4096;  // the new one is sharded: no stale model.safetensors may survive
  ASSERT_TRUE(SaveCheckpoint(dir + "/", c, b.views, DType::kF32, o).ok());
  EXPECT_FALSE(fs::exists(fs::path(dir) / "model.safetensors"));
  ExpectOnlyEntries(1);
  Params d = MakeParams(c, 10);
  ASSERT_TRUE(LoadCheckpointInto(dir, d.views).ok());
  EXPECT_EQ(d.buffer, b.buffer);
}

TEST_F(CheckpointTest, SaveRefusesParamsThatDoNotMatchTheConfig) {
  const LlamaConfig c = TinyConfig();
  Params a = MakeParams(c, 11);
  auto expect = [&](std::vector<ParamView> views, const std::string& needle) {
    Status s = SaveCheckpoint((root_ / "bad").string(), c, views);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
    EXPECT_FALSE(fs::exists(root_ / "bad"));
  };
  auto v = a.views;
  v.pop_back();
  expect(v, "'lm_head.weight' missing");
  v = a.views;
  v[1].shape = {16, 64};
  expect(v, "'model.layers.0.self_attn.q_proj.weight' has shape [16, 64], config needs [32, 32]");
  v = a.views;
  v.push_back(v[0]);
  expect(v, "given twice");
  v = a.views;
  v[0].name = "model.embed.weight";
  expect(v, "'model.embed.weight' is not part");
  LlamaConfig bad = c;
  bad.num_key_value_heads = 3;
  Status s = SaveCheckpoint((root_ / "bad").string(), bad, a.views);
  EXPECT_NE(s.message().find("num_key_value_heads"), std::string::npos) << s.message();
  ExpectOnlyEntries(0);
}

TEST_F(CheckpointTest, LoadErrorsNameFileAndTensorAndLeaveBuffersAlone) {
  const LlamaConfig c = TinyConfig();
  Params a = MakeParams(c, 12);
  const std::string dir = (root_ / "ckpt").string();
  ASSERT_TRUE(SaveCheckpoint(dir, c, a.views).ok());
  const std::string file = dir + "/model.safetensors";

  Params b = MakeParams(c, 13);
  const std::vector<float> before = b.buffer;
  auto expect = [&](std::vector<ParamView> views, const std::string& needle, const LoadOptions& o = {}) {
    Status s = LoadCheckpointInto(dir, views, o);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
    EXPECT_EQ(b.buffer, before);
  };
  auto v = b.views;
  v[1].shape = {16, 64};  // same numel, wrong shape
  expect(v, file + ": tensor 'model.layers.0.self_attn.q_proj.weight' has shape [32, 32], the model expects [16, 64]");
  v = b.views;
  ParamView extra = v[0];
  extra.name = "model.extra.weight";
  v.push_back(extra);
  expect(v, dir + ": tensor 'model.extra.weight' missing");
  v = b.views;
  v.pop_back();
  expect(v, file + ": unexpected tensor 'lm_head.weight'");
  LoadOptions lenient;
  lenient.allow_unexpected = true;
  EXPECT_TRUE(LoadCheckpointInto(dir, v, lenient).ok());
  b.buffer = before;

  // An integer tensor where a weight should be.
  std::vector<int64_t> ints(static_cast<size_t>(37 * 32), 1);
  std::vector<TensorSpec> specs;
  specs.push_back(TensorSpec{"model.embed_tokens.weight", {37, 32}, nullptr, ints.data(), DType::kI64});
  ASSERT_TRUE(WriteSafetensors(file, specs, DType::kF32).ok());
  expect({b.views[0]}, file + ": tensor 'model.embed_tokens.weight' has dtype I64");

  // A truncated weights file.
  ASSERT_TRUE(SaveCheckpoint(dir, c, a.views, DType::kF32, SaveOptions{0, true, "", "", {}}).ok());
  fs::resize_file(file, fs::file_size(file) - 100);
  expect(b.views, file + ": tensor 'lm_head.weight': data_offsets");
  fs::remove(file);
  expect(b.views, "neither model.safetensors nor");
}

// Re-saves the HF fixture through SaveCheckpoint in the forms the workers
// write (F32 sharded with the tokenizer; BF16; a reward model), reloads each
// here, and, with HERD_EXPORT_DIR set, leaves them there for
// tests/reference/check_checkpoint.py to load in transformers.
TEST_F(CheckpointTest, ResavesTheFixtureInEveryForm) {
  auto c = LoadCheckpointConfig(kFixtureDir);
  ASSERT_TRUE(c.ok());
  Params p = MakeParams(*c, 20);
  ASSERT_TRUE(LoadCheckpointInto(kFixtureDir, p.views).ok());
  const char* env = std::getenv("HERD_EXPORT_DIR");
  const fs::path out = env != nullptr ? fs::path(env) : root_;

  SaveOptions sharded;
  sharded.overwrite = true;
  sharded.max_shard_bytes = 100000;
  sharded.tokenizer_json = ByteTokenizer::TokenizerJson();
  sharded.tokenizer_config_json = ByteTokenizer::TokenizerConfigJson();
  ASSERT_TRUE(SaveCheckpoint((out / "f32_sharded").string(), *c, p.views, DType::kF32, sharded).ok());
  SaveOptions plain;
  plain.overwrite = true;
  ASSERT_TRUE(SaveCheckpoint((out / "bf16").string(), *c, p.views, DType::kBF16, plain).ok());

  Params back = MakeParams(*c, 21);
  ASSERT_TRUE(LoadCheckpointInto((out / "f32_sharded").string(), back.views).ok());
  EXPECT_EQ(back.buffer, p.buffer);

  // Reward model: the backbone plus a (1, d) score head, no lm_head.
  LlamaConfig rm = *c;
  rm.is_reward_model = true;
  Params r = MakeParams(rm, 22);
  for (ParamView& v : r.views) {
    for (const ParamView& src : p.views) {
      if (src.name == v.name) std::copy(src.data, src.data + src.numel(), v.data);
    }
  }
  ASSERT_TRUE(SaveCheckpoint((out / "reward").string(), rm, r.views, DType::kF32, plain).ok());
  auto rc = LoadCheckpointConfig((out / "reward").string());
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_TRUE(rc->is_reward_model);
}

}  // namespace
}  // namespace herd::model
