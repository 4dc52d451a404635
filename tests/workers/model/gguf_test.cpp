// GGUF reading, dequantization and import, against fixtures written by
// gguf-py (tests/reference/make_gguf_fixture.py, dump_gguf_digest.py).
//
// Dequantized values must equal gguf-py's bit for bit: tolerance 0. Both
// sides evaluate the same float32 expressions in the same order, so any
// difference is a layout or rounding bug, not noise.
#include "workers/model/gguf.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "common/sha256.h"
#include "tests/testing/real_model.h"
#include "tests/testing/temp_dir.h"
#include "workers/model/checkpoint.h"
#include "workers/model/chat_format.h"
#include "workers/model/gguf_import.h"
#include "workers/model/safetensors.h"

namespace herd::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kDir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/gguf";

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

uint32_t Bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

// The index of the first element whose bits differ, or -1.
int64_t FirstBitDifference(const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (Bits(a[i]) != Bits(b[i])) return i;
  }
  return -1;
}

// ---- a minimal GGUF writer for hand-made error cases -------------------------------

class GgufBuilder {
 public:
  GgufBuilder& Str(const std::string& key, const std::string& v) {
    Key(key, 8);
    String(&kv_, v);
    ++n_kv_;
    return *this;
  }
  GgufBuilder& U32(const std::string& key, uint32_t v) {
    Key(key, 4);
    Put(&kv_, v);
    ++n_kv_;
    return *this;
  }
  GgufBuilder& F32(const std::string& key, float v) {
    Key(key, 6);
    Put(&kv_, v);
    ++n_kv_;
    return *this;
  }
  GgufBuilder& Strings(const std::string& key, const std::vector<std::string>& v) {
    Key(key, 9);
    Put(&kv_, uint32_t{8});
    Put(&kv_, uint64_t{v.size()});
    for (const auto& s : v) String(&kv_, s);
    ++n_kv_;
    return *this;
  }
  // A tensor of raw bytes (ne innermost first).
  GgufBuilder& Tensor(const std::string& name, std::vector<uint64_t> ne, GgmlType type,
                      const std::string& bytes) {
    String(&ti_, name);
    Put(&ti_, static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) Put(&ti_, d);
    Put(&ti_, static_cast<uint32_t>(type));
    Put(&ti_, uint64_t{data_.size()});
    data_ += bytes;
    data_.resize((data_.size() + 31) / 32 * 32, '\0');
    ++n_tensors_;
    return *this;
  }
  GgufBuilder& F32Tensor(const std::string& name, std::vector<uint64_t> ne) {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    std::string bytes(n * 4, '\0');
    for (uint64_t i = 0; i < n; ++i) {
      const float x = 0.01f * static_cast<float>(i % 97) - 0.3f;
      std::memcpy(&bytes[i * 4], &x, 4);
    }
    return Tensor(name, std::move(ne), GgmlType::kF32, bytes);
  }
  std::string Build(uint32_t version = 3) const {
    std::string out = "GGUF";
    Put(&out, version);
    Put(&out, n_tensors_);
    Put(&out, n_kv_);
    out += kv_ + ti_;
    out.resize((out.size() + 31) / 32 * 32, '\0');
    return out + data_;
  }

 private:
  template <typename T>
  static void Put(std::string* s, T v) {
    s->append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void String(std::string* s, const std::string& v) {
    Put(s, uint64_t{v.size()});
    *s += v;
  }
  void Key(const std::string& key, uint32_t type) {
    String(&kv_, key);
    Put(&kv_, type);
  }
  std::string kv_, ti_, data_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
};

// A complete tiny llama (d 8, 1 layer, 2 heads, f 8, vocab 4) in F32, with a
// gpt2 tokenizer; tests change one thing at a time.
struct TinyLlama {
  std::string pre = "gpt2";
  std::string tokenizer_model = "gpt2";
  std::string arch = "llama";
  bool extra_tensor = false;
  std::vector<float> rope_freqs;  // rope_freqs.weight (head_dim/2 divisors) when not empty
  GgmlType q_type = GgmlType::kF32;

  std::string Build() const {
    GgufBuilder b;
    b.Str("general.architecture", arch)
        .U32("llama.embedding_length", 32)
        .U32("llama.feed_forward_length", 32)
        .U32("llama.block_count", 1)
        .U32("llama.attention.head_count", 2)
        .U32("llama.attention.head_count_kv", 1)
        .F32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
        .F32("llama.rope.freq_base", 500000.0f)
        .U32("llama.context_length", 64)
        .Str("tokenizer.ggml.model", tokenizer_model)
        .Str("tokenizer.ggml.pre", pre)
        .Strings("tokenizer.ggml.tokens", {"a", "b", "ab", "<|end|>"})
        .Strings("tokenizer.ggml.merges", {"a b"})
        .U32("tokenizer.ggml.bos_token_id", 3)
        .U32("tokenizer.ggml.eos_token_id", 3);
    b.F32Tensor("token_embd.weight", {32, 4});
    b.F32Tensor("blk.0.attn_norm.weight", {32});
    if (q_type == GgmlType::kF32) {
      b.F32Tensor("blk.0.attn_q.weight", {32, 32});
    } else {
      int64_t be = 0, bb = 0;
      GgmlBlockLayout(q_type, &be, &bb);
      b.Tensor("blk.0.attn_q.weight", {32, 32}, q_type, std::string(32 * 32 / be * bb, '\x01'));
    }
    b.F32Tensor("blk.0.attn_k.weight", {32, 16});
    b.F32Tensor("blk.0.attn_v.weight", {32, 16});
    b.F32Tensor("blk.0.attn_output.weight", {32, 32});
    b.F32Tensor("blk.0.ffn_norm.weight", {32});
    b.F32Tensor("blk.0.ffn_gate.weight", {32, 32});
    b.F32Tensor("blk.0.ffn_up.weight", {32, 32});
    b.F32Tensor("blk.0.ffn_down.weight", {32, 32});
    b.F32Tensor("output_norm.weight", {32});
    if (extra_tensor) b.F32Tensor("blk.0.attn_q.bias", {32});
    if (!rope_freqs.empty()) {
      b.Tensor("rope_freqs.weight", {rope_freqs.size()}, GgmlType::kF32,
               std::string(reinterpret_cast<const char*>(rope_freqs.data()), rope_freqs.size() * 4));
    }
    return b.Build();
  }
  // Writes the file into dir and imports it into dir/out.
  Result<GgufImportSummary> Import(const std::string& dir) const {
    fs::create_directories(dir);
    const std::string path = dir + "/tiny.gguf";
    std::ofstream(path, std::ios::binary) << Build();
    return ImportGguf(path, dir + "/out");
  }
};

// ---- reader ------------------------------------------------------------------------

TEST(GgufReader, ReadsMetadataOfEveryValueType) {
  auto f = GgufFile::Open(kDir + "/types.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(*f->GetString("general.architecture"), "herd-types");
  EXPECT_EQ(*f->GetInt("t.u8"), 200);
  EXPECT_EQ(*f->GetInt("t.i8"), -100);
  EXPECT_EQ(*f->GetInt("t.u16"), 60000);
  EXPECT_EQ(*f->GetInt("t.i16"), -30000);
  EXPECT_EQ(*f->GetInt("t.u32"), 4000000000);
  EXPECT_EQ(*f->GetInt("t.i32"), -2000000000);
  EXPECT_EQ(*f->GetInt("t.i64"), -(int64_t{1} << 62));
  EXPECT_EQ(f->Find("t.u64")->u, (uint64_t{1} << 63) + 5);
  EXPECT_TRUE(f->GetInt("t.u64").status().IsInvalidArgument());  // above INT64_MAX
  EXPECT_EQ(*f->GetFloat("t.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(*f->GetFloat("t.f64"), 0.1);
  EXPECT_TRUE(*f->GetBool("t.bool"));
  EXPECT_EQ(*f->GetString("t.string"), "h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_EQ(*f->GetIntArray("t.arr_i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*f->GetStringArray("t.arr_str"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->Find("t.arr_f32")->items.at(1).f, -1.25);

  auto missing = f->GetInt("no.such.key");
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("'no.such.key' missing"), std::string::npos);
  auto wrong = f->GetString("t.u32");
  EXPECT_TRUE(wrong.status().IsInvalidArgument());
  EXPECT_NE(wrong.status().message().find("'t.u32' must be a string, got u32"), std::string::npos)
      << wrong.status().message();

  const GgufTensorInfo* q = f->FindTensor("q4_1");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne, (std::vector<int64_t>{160, 3}));
  EXPECT_EQ(q->shape(), (std::vector<int64_t>{3, 160}));
  EXPECT_EQ(q->type, GgmlType::kQ4_1);
  EXPECT_EQ(q->bytes, 3u * 5 * 20);
  for (const auto& t : f->tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
}

TEST(GgufDequant, EveryTypeEqualsGgufPyBitForBit) {
  auto f = GgufFile::Open(kDir + "/types.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto expected = SafetensorsFile::Open(kDir + "/types_expected.safetensors");
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  std::set<std::string> types;
  for (const TensorInfo& e : expected->tensors()) {
    SCOPED_TRACE(e.name);
    const GgufTensorInfo* t = f->FindTensor(e.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape(), e.shape);
    std::vector<float> want(static_cast<size_t>(e.numel())), got(want.size(), -1.0f);
    ASSERT_TRUE(expected->ReadF32(e.name, want.data(), e.numel()).ok());
    Status s = f->ReadF32(*t, got.data(), t->numel());
    ASSERT_TRUE(s.ok()) << s.ToString();
    const int64_t bad = FirstBitDifference(got.data(), want.data(), e.numel());
    EXPECT_EQ(bad, -1) << GgmlTypeName(t->type) << " element " << bad << ": " << got[bad]
                       << " vs gguf-py " << want[bad];
    types.insert(GgmlTypeName(t->type));
  }
  EXPECT_EQ(types, (std::set<std::string>{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0",
                                          "Q5_1", "Q4_K", "Q5_K", "Q6_K"}));
}

TEST(GgufDequant, UnsupportedTypeNamesTensorAndType) {
  auto f = GgufFile::Open(kDir + "/types.gguf");
  ASSERT_TRUE(f.ok());
  const GgufTensorInfo* t = f->FindTensor("unsupported_iq2_xxs");
  ASSERT_NE(t, nullptr);
  std::vector<float> out(static_cast<size_t>(t->numel()));
  Status s = f->ReadF32(*t, out.data(), t->numel());
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("tensor 'unsupported_iq2_xxs' has type IQ2_XXS"), std::string::npos)
      << s.message();
}

TEST(GgufReader, EveryTruncationFailsCleanly) {
  const std::string bytes = ReadFile(kDir + "/tiny_llama.gguf");
  auto full = GgufFile::FromBytes("tiny_llama.gguf", bytes);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  uint64_t data_end = 0;
  for (const auto& t : full->tensors()) data_end = std::max(data_end, t.offset + t.bytes);
  const uint64_t end = full->data_offset() + data_end;
  ASSERT_LE(end, bytes.size());
  // Every cut inside the header and tensor infos, then every 97th byte.
  for (uint64_t n = 0; n < end; n += n < full->data_offset() + 64 ? 1 : 97) {
    auto f = GgufFile::FromBytes("tiny_llama.gguf", bytes.substr(0, n));
    ASSERT_FALSE(f.ok()) << "cut at " << n;
    EXPECT_TRUE(f.status().IsDataLoss()) << f.status().ToString();
    EXPECT_EQ(f.status().message().rfind("tiny_llama.gguf: ", 0), 0u) << f.status().message();
    if (n >= 4) {
      EXPECT_NE(f.status().message().find("truncated"), std::string::npos)
          << "cut at " << n << ": " << f.status().message();
    }
  }
}

TEST(GgufReader, RejectsBadMagicVersionsAndHugeCounts) {
  const std::string bytes = ReadFile(kDir + "/tiny_llama.gguf");
  auto with = [&](size_t at, const std::string& patch) {
    std::string b = bytes;
    b.replace(at, patch.size(), patch);
    return GgufFile::FromBytes("x.gguf", b).status();
  };
  Status magic = with(0, "GGML");
  EXPECT_TRUE(magic.IsDataLoss());
  EXPECT_EQ(magic.message(), "x.gguf: bad magic 'GGML', not a GGUF file");
  Status v1 = with(4, std::string("\x01\0\0\0", 4));
  EXPECT_NE(v1.message().find("unsupported GGUF version 1"), std::string::npos) << v1.message();
  Status v9 = with(4, std::string("\x09\0\0\0", 4));
  EXPECT_NE(v9.message().find("unsupported GGUF version 9"), std::string::npos) << v9.message();
  Status big_endian = with(4, std::string("\0\0\0\x03", 4));
  EXPECT_NE(big_endian.message().find("big-endian"), std::string::npos) << big_endian.message();
  // Counts that would need more bytes than the file has: refused before
  // anything is allocated.
  Status kv = with(16, std::string("\0\0\0\0\0\0\0\x10", 8));
  EXPECT_TRUE(kv.IsDataLoss());
  EXPECT_NE(kv.message().find("truncated"), std::string::npos) << kv.message();
  Status tensors = with(8, std::string("\0\0\0\0\0\0\0\x10", 8));
  EXPECT_NE(tensors.message().find("truncated"), std::string::npos) << tensors.message();
  // A version-2 file reads like version 3.
  EXPECT_TRUE(with(4, std::string("\x02\0\0\0", 4)).ok());
}

TEST(GgufReader, RandomHeaderCorruptionNeverCrashes) {
  const std::string bytes = ReadFile(kDir + "/tiny_llama.gguf");
  auto full = GgufFile::FromBytes("x", bytes);
  ASSERT_TRUE(full.ok());
  const size_t header = full->data_offset();
  std::mt19937 rng(7);
  int opened = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string b = bytes;
    for (int k = 0; k < 3; ++k) b[rng() % header] = static_cast<char>(rng() & 0xFF);
    auto f = GgufFile::FromBytes("x", b);
    if (!f.ok()) continue;
    ++opened;
    // Whatever opened must read in bounds.
    for (const auto& t : f->tensors()) {
      if (!CanDequantize(t.type) || t.numel() > (1 << 20)) continue;
      std::vector<float> out(static_cast<size_t>(t.numel()));
      EXPECT_TRUE(f->ReadF32(t, out.data(), t.numel()).ok());
    }
  }
  EXPECT_GT(opened, 0);  // flips inside token strings keep the file valid
}

TEST(GgufReader, MissingFileIsNotFound) {
  auto f = GgufFile::Open("/nonexistent/model.gguf");
  EXPECT_TRUE(f.status().IsNotFound());
}

// ---- mapping ------------------------------------------------------------------------

TEST(GgufImport, MapsTensorNames) {
  EXPECT_EQ(*HfTensorName("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(*HfTensorName("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(*HfTensorName("output.weight"), "lm_head.weight");
  EXPECT_EQ(*HfTensorName("blk.0.attn_q.weight"), "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.12.attn_k.weight"), "model.layers.12.self_attn.k_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.3.attn_v.weight"), "model.layers.3.self_attn.v_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.3.attn_output.weight"), "model.layers.3.self_attn.o_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.3.ffn_gate.weight"), "model.layers.3.mlp.gate_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.3.ffn_up.weight"), "model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.3.ffn_down.weight"), "model.layers.3.mlp.down_proj.weight");
  EXPECT_EQ(*HfTensorName("blk.3.attn_norm.weight"), "model.layers.3.input_layernorm.weight");
  EXPECT_EQ(*HfTensorName("blk.3.ffn_norm.weight"),
            "model.layers.3.post_attention_layernorm.weight");
  for (const char* bad : {"blk.x.attn_q.weight", "blk..attn_q.weight", "blk.01.attn_q.weight",
                          "blk.0.attn_q.bias", "rope_freqs.weight", "blk.0.attn_qkv.weight"}) {
    EXPECT_FALSE(HfTensorName(bad).has_value()) << bad;
  }
}

TEST(GgufImport, UnpermuteInvertsLlamaCppPermutation) {
  // llama.cpp: rows (n_head, 2, hd/2) → (n_head, hd/2, 2). With n_head 2,
  // hd 6, one column, HF rows 0..11 become GGUF rows
  // [0 3 1 4 2 5 | 6 9 7 10 8 11].
  std::vector<float> w = {0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11};
  UnpermuteQkRows(w.data(), 12, 1, 2);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(w[i], static_cast<float>(i));
  // Whole rows move: two columns.
  std::vector<float> w2 = {0, 0, 2, 2, 1, 1, 3, 3};  // n_head 1, hd 4
  UnpermuteQkRows(w2.data(), 4, 2, 1);
  EXPECT_EQ(w2, (std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3}));
}

TEST(GgufImport, ConfigFromMetadata) {
  auto f = GgufFile::Open(kDir + "/tiny_llama.gguf");
  ASSERT_TRUE(f.ok());
  auto c = LlamaConfigFromGguf(*f);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 128);
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->num_attention_heads, 4);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->rms_norm_eps, 1e-6f);
  EXPECT_EQ(c->rope_theta, 500000.0f);
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_EQ(c->vocab_size, 300);
  EXPECT_EQ(c->max_position_embeddings, 256);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->eos_token_id, 2);

  auto tied = GgufFile::Open(kDir + "/tiny_llama_tied.gguf");
  ASSERT_TRUE(tied.ok());
  auto ct = LlamaConfigFromGguf(*tied);
  ASSERT_TRUE(ct.ok()) << ct.status().ToString();
  EXPECT_TRUE(ct->tie_word_embeddings);
  EXPECT_EQ(ct->hidden_size, 32);
  EXPECT_EQ(ct->num_key_value_heads, 1);
}

// Loads dir with herd's checkpoint loader into fresh buffers, by name.
std::map<std::string, std::vector<float>> LoadWithHerd(const std::string& dir,
                                                       const LlamaConfig& c) {
  std::map<std::string, std::vector<float>> out;
  std::vector<ParamView> views;
  for (const TensorShape& s : LlamaTensorShapes(c)) {
    auto& buf = out[s.name];
    buf.resize(static_cast<size_t>(ParamView{s.name, s.shape, nullptr}.numel()));
    views.push_back(ParamView{s.name, s.shape, buf.data()});
  }
  Status st = LoadCheckpointInto(dir, views);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(GgufImport, TinyLlamaLoadsWithHfLayoutBitForBit) {
  testing::TempDir tmp("gguf");
  const std::string out = tmp.path() + "/ckpt";
  auto summary = ImportGguf(kDir + "/tiny_llama.gguf", out);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->gguf_tensors, 2 + 2 * 9 + 1);
  EXPECT_EQ(summary->types.at("Q4_0"), 2);
  EXPECT_EQ(summary->types.at("F32"), 2 * 2 + 1 + 1);

  auto c = LoadCheckpointConfig(out);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_FALSE(c->tie_word_embeddings);
  auto loaded = LoadWithHerd(out, *c);

  // The expectation is gguf-py's dequantization with q/k rows un-permuted
  // in numpy, i.e. the HF layout.
  auto expected = SafetensorsFile::Open(kDir + "/tiny_llama_expected.safetensors");
  ASSERT_TRUE(expected.ok());
  ASSERT_EQ(expected->tensors().size(), loaded.size());
  for (const TensorInfo& e : expected->tensors()) {
    SCOPED_TRACE(e.name);
    ASSERT_EQ(loaded.count(e.name), 1u);
    std::vector<float> want(static_cast<size_t>(e.numel()));
    ASSERT_TRUE(expected->ReadF32(e.name, want.data(), e.numel()).ok());
    const auto& got = loaded.at(e.name);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(FirstBitDifference(got.data(), want.data(), e.numel()), -1);
  }
  // Sanity: the permutation is not the identity, so leaving q as stored
  // would have failed above.
  auto f = GgufFile::Open(kDir + "/tiny_llama.gguf");
  ASSERT_TRUE(f.ok());
  const GgufTensorInfo* q = f->FindTensor("blk.0.attn_q.weight");
  std::vector<float> raw(static_cast<size_t>(q->numel()));
  ASSERT_TRUE(f->ReadF32(*q, raw.data(), q->numel()).ok());
  EXPECT_NE(FirstBitDifference(
                raw.data(), loaded.at("model.layers.0.self_attn.q_proj.weight").data(), q->numel()),
            -1);
}

TEST(GgufImport, TiedModelHasNoLmHead) {
  testing::TempDir tmp("gguf");
  const std::string out = tmp.path() + "/ckpt";
  auto summary = ImportGguf(kDir + "/tiny_llama_tied.gguf", out);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto c = LoadCheckpointConfig(out);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tie_word_embeddings);
  auto set = SafetensorsSet::Open(out);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->Find("lm_head.weight"), nullptr);
  EXPECT_NE(set->Find("model.embed_tokens.weight"), nullptr);
  LoadWithHerd(out, *c);
}

TEST(GgufImport, TokenizerMatchesTransformersConversion) {
  testing::TempDir tmp("gguf");
  const std::string out = tmp.path() + "/ckpt";
  auto summary = ImportGguf(kDir + "/tiny_llama.gguf", out);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->tokenizer.pre, "smollm");
  EXPECT_EQ(summary->tokenizer.vocab_size, 300);
  EXPECT_EQ(DescribeChatTemplate(summary->tokenizer.chat_template), "chatml");

  const json got = json::parse(ReadFile(out + "/tokenizer.json"));
  const json ref = json::parse(ReadFile(kDir + "/tiny_llama_tokenizer.json"));
  EXPECT_EQ(got["model"]["type"], "BPE");
  EXPECT_EQ(got["model"]["vocab"], ref["model"]["vocab"]);
  EXPECT_EQ(got["model"]["merges"], ref["model"]["merges"]);
  EXPECT_EQ(got["model"]["ignore_merges"], false);
  EXPECT_EQ(got["added_tokens"], ref["added_tokens"]);  // 3 control (special) + <think>
  EXPECT_EQ(got["added_tokens"].size(), 4u);
  EXPECT_EQ(got["decoder"], ref["decoder"]);
  EXPECT_EQ(got["normalizer"], nullptr);
  EXPECT_EQ(got["post_processor"], ref["post_processor"]);
  // Deliberate difference: transformers gives "smollm" GPT-2's plain
  // ByteLevel; llama.cpp and SmolLM2's own tokenizer.json split digits one
  // by one first (the ids agree for SmolLM2, whose merges never join two
  // ASCII digits; see docs/checkpoints.md).
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  EXPECT_EQ(ref["pre_tokenizer"], byte_level);
  EXPECT_EQ(
      got["pre_tokenizer"],
      json({{"type", "Sequence"},
            {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}}));

  const json cfg = json::parse(ReadFile(out + "/tokenizer_config.json"));
  EXPECT_EQ(cfg["bos_token"], "<|im_start|>");
  EXPECT_EQ(cfg["eos_token"], "<|im_end|>");
  EXPECT_EQ(cfg["pad_token"], "<|im_end|>");
  EXPECT_EQ(cfg["unk_token"], "<|endoftext|>");
  EXPECT_EQ(cfg["add_bos_token"], false);
  EXPECT_EQ(cfg["model_max_length"], 256);
  EXPECT_EQ(cfg["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_NE(cfg["chat_template"].get<std::string>().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(cfg["added_tokens_decoder"]["285"]["content"], "<think>");
  EXPECT_EQ(cfg["added_tokens_decoder"]["285"]["special"], false);
  EXPECT_EQ(cfg["added_tokens_decoder"]["0"]["special"], true);

  const json gen = json::parse(ReadFile(out + "/generation_config.json"));
  EXPECT_EQ(gen["eos_token_id"], 2);
  EXPECT_EQ(gen["bos_token_id"], 1);
}

TEST(GgufImport, LlamaBpeTokenizerUsesTheLlama3Split) {
  auto f = GgufFile::Open(kDir + "/tiny_llama_tied.gguf");
  ASSERT_TRUE(f.ok());
  auto t = HfTokenizerFromGguf(*f, 128);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const json j = json::parse(t->tokenizer_json);
  EXPECT_EQ(j["model"]["ignore_merges"], true);
  const json& seq = j["pre_tokenizer"]["pretokenizers"];
  ASSERT_EQ(seq.size(), 2u);
  EXPECT_EQ(seq[0]["type"], "Split");
  EXPECT_EQ(seq[0]["behavior"], "Isolated");
  EXPECT_EQ(seq[0]["pattern"]["Regex"].get<std::string>().substr(0, 28),
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)");
  EXPECT_EQ(seq[1]["use_regex"], false);
}

TEST(GgufImport, UnsupportedTokenizersAreNamed) {
  testing::TempDir tmp("gguf");
  TinyLlama sp;
  sp.tokenizer_model = "llama";
  auto s = sp.Import(tmp.path());
  EXPECT_TRUE(s.status().IsInvalidArgument());
  EXPECT_NE(s.status().message().find("unsupported tokenizer: "), std::string::npos);
  EXPECT_NE(s.status().message().find("tokenizer.ggml.model 'llama' (SentencePiece)"),
            std::string::npos)
      << s.status().message();

  TinyLlama pre;
  pre.pre = "qwen2";
  s = pre.Import(tmp.path());
  EXPECT_NE(s.status().message().find("tokenizer.ggml.pre 'qwen2'"), std::string::npos)
      << s.status().message();
  EXPECT_FALSE(fs::exists(tmp.path() + "/out"));
}

TEST(GgufImport, ErrorsNameTheTensorOrKey) {
  testing::TempDir tmp("gguf");
  {
    TinyLlama ok;
    auto s = ok.Import(tmp.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE(s->config.tie_word_embeddings);
    // Importing again without overwrite is refused.
    EXPECT_EQ(ok.Import(tmp.path()).status().code(), Status::Code::kAlreadyExists);
    fs::remove_all(tmp.path() + "/out");
  }
  TinyLlama q2k;
  q2k.q_type = GgmlType::kQ2_K;
  // Q2_K needs 256-element rows; the 32-column q cannot hold it.
  auto bad_layout = GgufFile::FromBytes("x", q2k.Build());
  EXPECT_NE(bad_layout.status().message().find("not a multiple of the Q2_K block size 256"),
            std::string::npos)
      << bad_layout.status().message();

  TinyLlama q8_1;
  q8_1.q_type = GgmlType::kQ8_1;
  auto s = q8_1.Import(tmp.path());
  EXPECT_TRUE(s.status().IsInvalidArgument());
  EXPECT_NE(s.status().message().find("tensor 'blk.0.attn_q.weight' has type Q8_1"),
            std::string::npos)
      << s.status().message();

  TinyLlama extra;
  extra.extra_tensor = true;
  s = extra.Import(tmp.path());
  EXPECT_NE(s.status().message().find("tensor 'blk.0.attn_q.bias' has no HF Llama equivalent"),
            std::string::npos)
      << s.status().message();

  TinyLlama arch;
  arch.arch = "qwen2";
  s = arch.Import(tmp.path());
  EXPECT_NE(s.status().message().find("'general.architecture' is 'qwen2'"), std::string::npos)
      << s.status().message();
  EXPECT_FALSE(fs::exists(tmp.path() + "/out"));
}

// The divisors llama.cpp's converter stores for Llama 3.1 (LlamaModel.
// generate_extra_tensors): 1 for short wavelengths, factor for long ones, a
// ramp between.
std::vector<float> Llama3RopeFreqs(double theta, int head_dim, double factor, double old_len) {
  std::vector<float> out;
  for (int i = 0; i < head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(theta, 2.0 * i / head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < old_len / 4) {
      out.push_back(1.0f);
    } else if (wavelen > old_len / 1) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_len / wavelen - 1) / (4 - 1);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

TEST(GgufImport, RopeFreqsBecomeLlama3Scaling) {
  testing::TempDir tmp("gguf");
  TinyLlama m;  // head_dim 16, theta 500000: divisors 1,1,1,1, a ramp value, 8,8,8
  m.rope_freqs = Llama3RopeFreqs(500000.0, 16, 8.0, 8192);
  ASSERT_EQ(m.rope_freqs[3], 1.0f);
  ASSERT_GT(m.rope_freqs[4], 1.0f);
  ASSERT_LT(m.rope_freqs[4], 8.0f);
  ASSERT_EQ(m.rope_freqs[5], 8.0f);
  auto s = m.Import(tmp.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->config.rope_scaling.has_value());
  EXPECT_EQ(s->config.rope_scaling->factor, 8.0f);
  EXPECT_EQ(s->config.rope_scaling->low_freq_factor, 1.0f);
  EXPECT_EQ(s->config.rope_scaling->high_freq_factor, 4.0f);
  EXPECT_EQ(s->config.rope_scaling->original_max_position_embeddings, 8192);
  auto c = LoadCheckpointConfig(tmp.path() + "/out");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->rope_scaling.has_value());

  TinyLlama odd;
  odd.rope_freqs = Llama3RopeFreqs(500000.0, 16, 8.0, 8192);
  odd.rope_freqs[4] = 2.0f;  // not the ramp
  auto e = odd.Import(tmp.path() + "/odd");
  EXPECT_TRUE(e.status().IsInvalidArgument());
  EXPECT_NE(e.status().message().find("'rope_freqs.weight' is not Llama 3 rope scaling"),
            std::string::npos)
      << e.status().message();
}

TEST(GgufImport, ChatTemplateKinds) {
  EXPECT_EQ(DescribeChatTemplate(""), "none");
  EXPECT_EQ(DescribeChatTemplate("{{'<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n'}}"), "chatml");
  EXPECT_EQ(DescribeChatTemplate("<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"),
            "llama3");
  EXPECT_EQ(DescribeChatTemplate("[INST]"), "unknown");
}

// ---- the real model -----------------------------------------------------------------

using testing::RealModelPath;

TEST(GgufRealModel, SmolLM2ImportEqualsGgufPyDequantization) {
  const std::string path = RealModelPath();
  if (path.empty()) {
    GTEST_SKIP() << testing::kRealModelSkip;
  }
  const json digest = json::parse(ReadFile(kDir + "/smollm2_135m_instruct_q4_1_digest.json"));
  testing::TempDir tmp("gguf-real");
  const std::string out = tmp.path() + "/smollm2";
  const auto t0 = std::chrono::steady_clock::now();
  auto summary = ImportGguf(path, out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  std::printf("[ import     ] %s in %.2f s\n", path.c_str(), secs);

  const LlamaConfig& c = summary->config;
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(summary->types.at("Q4_1"), 210);
  EXPECT_EQ(summary->types.at("Q8_0"), 1);
  EXPECT_EQ(summary->tokenizer.pre, "smollm");
  EXPECT_EQ(summary->tokenizer.merges, 48900);
  EXPECT_EQ(summary->tokenizer.added_tokens, 17);
  EXPECT_EQ(DescribeChatTemplate(summary->tokenizer.chat_template), "chatml");

  auto set = SafetensorsSet::Open(out);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set->tensors().size(), digest["tensors"].size());
  std::vector<float> buf;
  for (const auto& [name, want] : digest["tensors"].items()) {
    SCOPED_TRACE(name);
    const auto* e = set->Find(name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->info->shape, want["shape"].get<std::vector<int64_t>>());
    buf.resize(static_cast<size_t>(e->info->numel()));
    ASSERT_TRUE(set->ReadF32(name, buf.data(), e->info->numel()).ok());
    Sha256 h;
    h.Update(buf.data(), buf.size() * sizeof(float));
    EXPECT_EQ(h.FinishHex(), want["sha256"].get<std::string>()) << want["type"];
    double sum = 0, sum_sq = 0;
    for (float x : buf) sum += x, sum_sq += static_cast<double>(x) * x;
    EXPECT_NEAR(sum, want["sum"].get<double>(), 1e-6 * (1 + std::fabs(sum)));
    EXPECT_NEAR(sum_sq, want["sum_sq"].get<double>(), 1e-9 * sum_sq);
    for (size_t i = 0; i < want["first"].size(); ++i) {
      EXPECT_EQ(buf[i], want["first"][i].get<float>()) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace herd::model
