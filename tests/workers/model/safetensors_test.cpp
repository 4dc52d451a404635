#include "workers/model/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

namespace herd::model {
namespace {

namespace fs = std::filesystem;

const std::string kFixtureDir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/llama_tiny";

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("herd-st-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<float> RandomFloats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(g);
  return v;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A file with the given header JSON and data_size zero bytes after it.
std::string MakeFile(const std::string& header, size_t data_size) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  out += header;
  out += std::string(data_size, '\0');
  return out;
}

void ExpectOpenFails(const std::string& path, const std::string& needle) {
  auto r = SafetensorsFile::Open(path);
  ASSERT_FALSE(r.ok()) << "opened a bad file; wanted an error with '" << needle << "'";
  EXPECT_TRUE(r.status().IsDataLoss()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message '" << r.status().message() << "' lacks '" << needle << "'";
}

TEST_F(SafetensorsTest, F32RoundTripIsBitExact) {
  std::vector<float> a = RandomFloats(3 * 5 * 7, 1);
  // Special values must survive too.
  a[0] = -0.0f;
  a[1] = std::numeric_limits<float>::infinity();
  a[2] = std::numeric_limits<float>::denorm_min();
  a[3] = std::numeric_limits<float>::quiet_NaN();
  a[4] = std::numeric_limits<float>::max();
  std::vector<float> b = RandomFloats(11, 2);
  const std::vector<TensorSpec> specs = {{"a", {3, 5, 7}, a.data()}, {"b.weight", {11}, b.data()}};
  ASSERT_TRUE(WriteSafetensors(Path("x.safetensors"), specs, DType::kF32, {{"format", "pt"}}).ok());
  EXPECT_FALSE(fs::exists(Path("x.safetensors.partial")));

  auto f = SafetensorsFile::Open(Path("x.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const TensorInfo* ta = f->Find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->dtype, DType::kF32);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{3, 5, 7}));
  std::vector<float> a2(a.size()), b2(b.size());
  ASSERT_TRUE(f->ReadF32("a", a2.data(), static_cast<int64_t>(a2.size())).ok());
  ASSERT_TRUE(f->ReadF32("b.weight", b2.data(), 11).ok());
  EXPECT_EQ(std::memcmp(a.data(), a2.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(b.data(), b2.data(), b.size() * 4), 0);
  // The data section starts 8-byte aligned (header padded with spaces).
  const std::string raw = ReadBytes(Path("x.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST_F(SafetensorsTest, Bf16RoundTripIsWithinRounding) {
  std::vector<float> a = RandomFloats(1000, 3, 10.0f);
  ASSERT_TRUE(WriteSafetensors(Path("x.safetensors"), {{"a", {10, 100}, a.data()}}, DType::kBF16).ok());
  auto f = SafetensorsFile::Open(Path("x.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->Find("a")->dtype, DType::kBF16);
  EXPECT_EQ(f->Find("a")->end - f->Find("a")->begin, 2000u);
  std::vector<float> back(a.size());
  ASSERT_TRUE(f->ReadF32("a", back.data(), 1000).ok());
  for (size_t i = 0; i < a.size(); ++i) {
    // bf16 keeps 8 significant bits: round-to-nearest error <= 2^-8 relative.
    EXPECT_LE(std::fabs(back[i] - a[i]), std::ldexp(std::fabs(a[i]), -8)) << i;
    // And the stored value is the nearest bf16: its neighbours are no closer.
    const uint16_t b = FloatToBf16(a[i]);
    for (int d : {-1, 1}) {
      const float nb = Bf16ToFloat(static_cast<uint16_t>(b + d));
      EXPECT_GE(std::fabs(static_cast<double>(nb) - a[i]), std::fabs(static_cast<double>(back[i]) - a[i]));
    }
  }
}

TEST(Bf16, RoundsTiesToEven) {
  // Near 1 the bf16 spacing is 2^-7: 1 + 2^-8 is a tie → 1 (even mantissa);
  // 1 + 3·2^-8 is a tie between mantissas 1 and 2 → 2, i.e. 1 + 2^-6.
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::infinity()))));
}

TEST(F16, EveryHalfRoundTripsAndRoundingIsNearest) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToFloat(FloatToF16(f)))) << h;
      continue;
    }
    EXPECT_EQ(FloatToF16(f), h) << h;
  }
  // Independent check of rounding: the chosen half is at least as close as
  // its neighbours (in float64), for random values across the half range.
  std::mt19937 g(5);
  std::uniform_real_distribution<double> e(-26.0, 16.0);
  for (int i = 0; i < 20000; ++i) {
    const float x = static_cast<float>(std::exp2(e(g)) * (i % 2 ? -1.0 : 1.0));
    const uint16_t h = FloatToF16(x);
    const double got = F16ToFloat(h);
    if (std::isinf(got)) {
      EXPECT_GE(std::fabs(x), 65504.0f);
      continue;
    }
    for (int d : {-1, 1}) {
      const uint16_t nh = static_cast<uint16_t>(h + d);
      if ((nh & 0x7fffu) >= 0x7c00u || ((nh ^ h) & 0x8000u)) continue;  // inf/NaN or sign flip
      EXPECT_LE(std::fabs(got - x), std::fabs(static_cast<double>(F16ToFloat(nh)) - x)) << x;
    }
  }
  EXPECT_EQ(FloatToF16(65520.0f), 0x7c00);  // rounds up to inf
  EXPECT_EQ(FloatToF16(65519.0f), 0x7bff);  // 65504
}

TEST_F(SafetensorsTest, F16AndIntegerTensorsLoad) {
  std::vector<float> a = RandomFloats(64, 4);
  std::vector<int64_t> ids = {0, 5, -1, 1ll << 40};
  std::vector<int32_t> pos = {3, 4, 5};
  std::vector<TensorSpec> specs = {{"a", {8, 8}, a.data()}};
  specs.push_back(TensorSpec{"ids", {2, 2}, nullptr, ids.data(), DType::kI64});
  specs.push_back(TensorSpec{"pos", {3}, nullptr, pos.data(), DType::kI32});
  ASSERT_TRUE(WriteSafetensors(Path("x.safetensors"), specs, DType::kF16).ok());
  auto f = SafetensorsFile::Open(Path("x.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::vector<float> back(64);
  ASSERT_TRUE(f->ReadF32("a", back.data(), 64).ok());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(back[i], F16ToFloat(FloatToF16(a[i])));
  std::vector<int64_t> ids2(4), pos2(3);
  ASSERT_TRUE(f->ReadI64("ids", ids2.data(), 4).ok());
  ASSERT_TRUE(f->ReadI64("pos", pos2.data(), 3).ok());
  EXPECT_EQ(ids2, ids);
  EXPECT_EQ(pos2, (std::vector<int64_t>{3, 4, 5}));
  // Wrong kind or count: errors naming the tensor.
  Status s = f->ReadF32("ids", back.data(), 4);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'ids'"), std::string::npos) << s.message();
  s = f->ReadF32("a", back.data(), 63);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'a'"), std::string::npos);
  s = f->ReadI64("a", ids2.data(), 64);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(f->ReadF32("nope", back.data(), 1).IsNotFound());
}

TEST_F(SafetensorsTest, CorruptHeadersAreRefusedWithClearErrors) {
  const std::string p = Path("bad.safetensors");
  WriteBytes(p, "abc");
  ExpectOpenFails(p, "truncated");
  WriteBytes(p, MakeFile("{}", 0).substr(0, 9));  // length says 2, 1 byte follows
  ExpectOpenFails(p, "truncated: header length 2");
  std::string huge = MakeFile("{}", 0);
  huge[7] = '\x7f';  // header length ~ 2^63
  WriteBytes(p, huge);
  ExpectOpenFails(p, "exceeds");
  WriteBytes(p, MakeFile("{\"a\": [1, 2", 0));
  ExpectOpenFails(p, "not a JSON object");
  WriteBytes(p, MakeFile("  {}", 0));
  ExpectOpenFails(p, "does not start with '{'");

  const std::string ok = R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  WriteBytes(p, MakeFile(ok, 24));
  EXPECT_TRUE(SafetensorsFile::Open(p).ok());
  WriteBytes(p, MakeFile(ok, 20));  // data cut short
  ExpectOpenFails(p, "tensor 'a': data_offsets [0, 24) past the end");
  WriteBytes(p, MakeFile(ok, 28));  // trailing bytes no tensor owns
  ExpectOpenFails(p, "cover 24");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20));
  ExpectOpenFails(p, "tensor 'a': holds 20 bytes but F32 shape needs 24");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}})", 8));
  ExpectOpenFails(p, "tensor 'a'");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8, 4]}})", 8));
  ExpectOpenFails(p, "end < begin");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12));
  ExpectOpenFails(p, "tensor 'b': overlaps");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8));
  ExpectOpenFails(p, "hole");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1));
  ExpectOpenFails(p, "tensor 'a': unknown dtype 'Q4'");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4));
  ExpectOpenFails(p, "tensor 'a': shape entries");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})", 4));
  ExpectOpenFails(p, "tensor 'a': shape has too many elements");
  WriteBytes(p, MakeFile(R"({"a":{"dtype":"F32","shape":[1]}})", 4));
  ExpectOpenFails(p, "tensor 'a': 'data_offsets'");
  WriteBytes(p, MakeFile(R"({"__metadata__":{"k":1}})", 0));
  ExpectOpenFails(p, "__metadata__");
  EXPECT_TRUE(SafetensorsFile::Open(Path("missing.safetensors")).status().IsNotFound());
}

TEST_F(SafetensorsTest, EveryTruncationAndHeaderByteFlipFailsCleanly) {
  std::vector<float> a = RandomFloats(6, 7);
  std::vector<int64_t> ids = {1, 2, 3};
  std::vector<TensorSpec> specs = {{"w", {2, 3}, a.data()}};
  specs.push_back(TensorSpec{"ids", {3}, nullptr, ids.data(), DType::kI64});
  ASSERT_TRUE(WriteSafetensors(Path("good.safetensors"), specs, DType::kBF16).ok());
  const std::string good = ReadBytes(Path("good.safetensors"));
  const std::string p = Path("cut.safetensors");
  for (size_t len = 0; len < good.size(); ++len) {
    WriteBytes(p, good.substr(0, len));
    auto r = SafetensorsFile::Open(p);
    EXPECT_FALSE(r.ok()) << "a file cut to " << len << " of " << good.size() << " bytes opened";
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsDataLoss()) << r.status().ToString();
    }
  }
  // Flipping header bytes must give an error or a valid file, never a crash;
  // reading every tensor of whatever opens must stay in bounds.
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  std::mt19937 g(11);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = good;
    const size_t at = 8 + g() % n;
    bad[at] = static_cast<char>(g());
    WriteBytes(p, bad);
    auto r = SafetensorsFile::Open(p);
    if (!r.ok()) continue;
    for (const TensorInfo& t : r->tensors()) {
      std::vector<float> f(static_cast<size_t>(t.numel()));
      std::vector<int64_t> i(static_cast<size_t>(t.numel()));
      (void)r->ReadF32(t.name, f.data(), t.numel());
      (void)r->ReadI64(t.name, i.data(), t.numel());
    }
  }
}

TEST_F(SafetensorsTest, WriterRefusesBadInputAndLeavesNoPartialFile) {
  std::vector<float> a(4, 1.0f);
  EXPECT_FALSE(WriteSafetensors(Path("x.safetensors"), {{"a", {4}, a.data()}, {"a", {4}, a.data()}},
                                DType::kF32).ok());
  EXPECT_FALSE(WriteSafetensors(Path("x.safetensors"), {{"__metadata__", {4}, a.data()}}, DType::kF32).ok());
  EXPECT_FALSE(WriteSafetensors(Path("x.safetensors"), {{"a", {4}, a.data()}}, DType::kI32).ok());
  {
    auto w = SafetensorsWriter::Create(Path("y.safetensors"), {{"a", {4}, nullptr}, {"b", {2}, nullptr}},
                                       DType::kF32);
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(w->AppendF32(a.data(), 4).ok());
    EXPECT_FALSE(w->AppendF32(a.data(), 3).ok());  // b has 2 values
    Status s = w->Finish();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("'b'"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(fs::exists(Path("y.safetensors")));
  EXPECT_FALSE(fs::exists(Path("y.safetensors.partial")));
  EXPECT_FALSE(fs::exists(Path("x.safetensors")));
}

TEST_F(SafetensorsTest, ShardedDirectoryRoundTrips) {
  std::vector<std::vector<float>> data;
  std::vector<TensorSpec> specs;
  for (int i = 0; i < 7; ++i) data.push_back(RandomFloats(100 + 37 * i, 20 + i));
  for (int i = 0; i < 7; ++i) {
    specs.push_back({"t" + std::to_string(i), {static_cast<int64_t>(data[i].size())}, data[i].data()});
  }
  ASSERT_TRUE(WriteSafetensorsDir(dir_.string(), specs, DType::kF32, 1500).ok());
  EXPECT_FALSE(fs::exists(Path("model.safetensors")));
  ASSERT_TRUE(fs::exists(Path("model.safetensors.index.json")));
  int shards = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".safetensors") {
      ++shards;
      if (e.file_size() > 1500 + 512) ADD_FAILURE() << e.path() << " too big";  // + header
    }
  }
  EXPECT_GE(shards, 4);
  EXPECT_TRUE(fs::exists(Path("model-00001-of-0000" + std::to_string(shards) + ".safetensors")));
  auto set = SafetensorsSet::Open(dir_.string());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->tensors().size(), 7u);
  for (int i = 0; i < 7; ++i) {
    std::vector<float> back(data[i].size());
    ASSERT_TRUE(set->ReadF32("t" + std::to_string(i), back.data(), static_cast<int64_t>(back.size())).ok());
    EXPECT_EQ(back, data[i]);
  }

  // An index naming a tensor its shard lacks, a shard tensor the index does
  // not map, and a path escaping the directory are all refused.
  const std::string index = ReadBytes(Path("model.safetensors.index.json"));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = index;
    const auto pos = s.find(from);
    EXPECT_NE(pos, std::string::npos);
    s.replace(pos, from.size(), to);
    WriteBytes(Path("model.safetensors.index.json"), s);
    return SafetensorsSet::Open(dir_.string());
  };
  auto r = with("\"t0\"", "\"t_missing\"");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'t_missing'"), std::string::npos) << r.status().message();
  r = with("\"t0\": \"model-00001", "\"t0\": \"../model-00001");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'t0'"), std::string::npos) << r.status().message();
  r = with("\"weight_map\"", "\"weights\"");
  ASSERT_FALSE(r.ok());
  WriteBytes(Path("model.safetensors.index.json"), index);
  ASSERT_TRUE(SafetensorsSet::Open(dir_.string()).ok());
  // A truncated shard names the shard file.
  const std::string shard1 = Path("model-00001-of-0000" + std::to_string(shards) + ".safetensors");
  const std::string bytes = ReadBytes(shard1);
  WriteBytes(shard1, bytes.substr(0, bytes.size() - 3));
  r = SafetensorsSet::Open(dir_.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(shard1), std::string::npos) << r.status().message();
  EXPECT_TRUE(SafetensorsSet::Open(Path("nowhere")).status().IsNotFound());
}

TEST(SafetensorsFixture, HfFilesParse) {
  // Written by the Python safetensors package: an independent writer.
  auto m = SafetensorsFile::Open(kFixtureDir + "/model.safetensors");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto fx = SafetensorsFile::Open(kFixtureDir + "/fixture.safetensors");
  ASSERT_TRUE(fx.ok()) << fx.status().ToString();
  EXPECT_EQ(m->tensors().size(), 21u);  // 2 layers x 9 + embed + norm + lm_head
  for (const TensorInfo& t : m->tensors()) {
    EXPECT_EQ(t.dtype, DType::kF32) << t.name;
    const TensorInfo* g = fx->Find("grad." + t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->shape, t.shape) << t.name;
  }
  const TensorInfo* ids = fx->Find("input_ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->shape, (std::vector<int64_t>{2, 11}));
  EXPECT_EQ(fx->Find("logits")->shape, (std::vector<int64_t>{2, 11, 101}));
  EXPECT_EQ(fx->Find("loss")->shape, std::vector<int64_t>{});
  std::vector<int64_t> id(22), targets(22);
  ASSERT_TRUE(fx->ReadI64("input_ids", id.data(), 22).ok());
  ASSERT_TRUE(fx->ReadI64("targets", targets.data(), 22).ok());
  for (int t = 0; t < 10; ++t) EXPECT_EQ(targets[t], id[t + 1]);  // next-token targets
  EXPECT_EQ(targets[21], -1);
  float loss = 0;
  ASSERT_TRUE(fx->ReadF32("loss", &loss, 1).ok());
  EXPECT_GT(loss, 0.0f);
}

}  // namespace
}  // namespace herd::model
