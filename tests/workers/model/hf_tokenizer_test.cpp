#include "workers/model/hf_tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kFixtures = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<const Tokenizer> Load(const std::string& fixture) {
  auto t = Tokenizer::FromFile(kFixtures + fixture + "/tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : nullptr;
}

json Cases(const std::string& fixture) {
  return json::parse(ReadFile(kFixtures + fixture + "/cases.json"))["cases"];
}

std::vector<int32_t> Ids(const json& j) { return j.get<std::vector<int32_t>>(); }

// ---- parity with HF tokenizers (tests/reference/make_tokenizer_fixtures.py) ----

class HfTokenizerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfTokenizerParity, EncodesAndDecodesEveryCaseAsHfDoes) {
  auto tok = Load(GetParam());
  ASSERT_NE(tok, nullptr);
  // misc_tokenizer's ByteLevel adds a prefix space, so decode(encode(t)) is
  // " " + t there, as in HF.
  const bool round_trips = GetParam() != "misc_tokenizer";
  const json cases = Cases(GetParam());
  ASSERT_GE(cases.size(), 30u);
  int failures = 0;
  for (const json& c : cases) {
    const std::string name = c["name"], text = c["text"];
    SCOPED_TRACE(GetParam() + " case " + name);
    const auto ids = tok->Encode(text, {.parse_special = true});
    const auto plain = tok->Encode(text, {.parse_special = false});
    bool ok = true;
    auto check = [&](bool cond) {
      ok &= cond;
      return cond;
    };
    EXPECT_TRUE(check(ids == Ids(c["ids"]))) << ::testing::PrintToString(ids);
    EXPECT_TRUE(check(plain == Ids(c["ids_plain"]))) << ::testing::PrintToString(plain);
    auto decoded = tok->Decode(Ids(c["ids"]));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_TRUE(check(*decoded == c["decoded"].get<std::string>())) << *decoded;
    auto skipped = tok->Decode(Ids(c["ids"]), /*skip_special=*/true);
    ASSERT_TRUE(skipped.ok());
    EXPECT_TRUE(check(*skipped == c["decoded_skip_special"].get<std::string>())) << *skipped;
    auto decoded_plain = tok->Decode(Ids(c["ids_plain"]));
    ASSERT_TRUE(decoded_plain.ok());
    EXPECT_TRUE(check(*decoded_plain == c["decoded_plain"].get<std::string>()));
    // Where HF gets the text back (not: bytes without a token, see below).
    if (round_trips && c["decoded_plain"] == text) {
      auto bytes = tok->DecodeBytes(plain);
      ASSERT_TRUE(bytes.ok());
      EXPECT_TRUE(check(*bytes == text));
    }
    failures += ok ? 0 : 1;
  }
  std::printf("[ parity   ] %s: %zu cases, %d failures\n", GetParam().c_str(), cases.size(),
              failures);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfTokenizerParity,
                         ::testing::Values("smollm2_tokenizer", "llama3_style_tokenizer",
                                           "misc_tokenizer"));

TEST(HfTokenizer, SmolLM2SpecialTokensOnlyWhenAsked) {
  auto tok = Load("smollm2_tokenizer");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_EQ(tok->TokenId("<|im_end|>"), 2);
  EXPECT_EQ(tok->TokenId("<|im_start|>"), 1);
  EXPECT_EQ(tok->TokenId("no such token"), std::nullopt);
  EXPECT_TRUE(tok->IsSpecial(2));
  EXPECT_FALSE(tok->IsSpecial(100));
  EXPECT_FALSE(tok->IsSpecial(-1));
  EXPECT_EQ(tok->Encode("<|im_end|>", {.parse_special = true}), std::vector<int32_t>{2});
  const auto plain = tok->Encode("<|im_end|>");
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  // Plain mode is the text's pieces encoded one after another only where the
  // pre-tokenizer would cut there anyway; here, around the special.
  auto a = tok->Encode("Hi");
  auto b = tok->Encode("<|im_end|>");
  a.insert(a.end(), b.begin(), b.end());
  EXPECT_EQ(tok->Encode("Hi<|im_end|>"), a);
  EXPECT_TRUE(tok->Encode("").empty());
}

TEST(HfTokenizer, DecodeRejectsIdsOutsideTheVocabNamingThePosition) {
  auto tok = Load("smollm2_tokenizer");
  ASSERT_NE(tok, nullptr);
  auto r = tok->Decode({1, 2, 49152});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_THAT(r.status().message(), HasSubstr("id 49152 at position 2"));
  auto neg = tok->DecodeBytes({-1});
  ASSERT_FALSE(neg.ok());
  EXPECT_THAT(neg.status().message(), HasSubstr("position 0"));
}

// Random byte strings (invalid UTF-8, control bytes, specials' text) come
// back byte for byte; the regex pre-tokenizers leave invalid bytes in gaps.
// A byte with no token of its own is dropped, as HF does without an
// unk_token (SmolLM2 lacks 21 of them, e.g. 0x04 and 0xC0).
TEST(HfTokenizer, AnyBytesRoundTrip) {
  std::mt19937 rng(7);
  for (const std::string fixture : {"smollm2_tokenizer", "llama3_style_tokenizer"}) {
    auto tok = Load(fixture);
    ASSERT_NE(tok, nullptr);
    std::array<bool, 256> dropped{};
    int n_dropped = 0;
    for (int b = 0; b < 256; ++b) {
      dropped[b] = tok->Encode(std::string(1, static_cast<char>(b))).empty();
      n_dropped += dropped[b];
    }
    EXPECT_EQ(n_dropped, fixture == "smollm2_tokenizer" ? 21 : 0);
    for (int n = 0; n < 300; ++n) {
      std::string s;
      const int len = static_cast<int>(rng() % 200);
      for (int i = 0; i < len; ++i) {
        const uint32_t r = rng() % 10;
        if (r < 4) {
          s.push_back(static_cast<char>(rng() % 256));
        } else if (r < 8) {
          s.push_back(" a\n\t1Zé"[rng() % 7]);
        } else if (r == 8) {
          s += "<|im_end|>";
        } else {
          s += "\xE4\xBD\xA0 ";
        }
      }
      std::string want;
      for (char c : s) {
        if (!dropped[static_cast<unsigned char>(c)]) want.push_back(c);
      }
      auto back = tok->DecodeBytes(tok->Encode(s));
      ASSERT_TRUE(back.ok());
      ASSERT_EQ(*back, want) << fixture;
    }
  }
}

TEST(HfTokenizer, ConcurrentEncodesAgree) {
  auto tok = Load("smollm2_tokenizer");
  ASSERT_NE(tok, nullptr);
  const json cases = Cases("smollm2_tokenizer");
  std::vector<std::string> texts;
  for (const json& c : cases) texts.push_back(c["text"]);
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok->Encode(t, {.parse_special = true}));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + static_cast<size_t>(t) * 7) % texts.size();
          if (tok->Encode(texts[k], {.parse_special = true}) != want[k]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// The per-thread word cache is bounded and cleared when full: results must
// not depend on what it holds.
TEST(HfTokenizer, ResultsDoNotDependOnTheWordCache) {
  auto tok = Load("smollm2_tokenizer");
  auto other = Load("llama3_style_tokenizer");
  ASSERT_NE(tok, nullptr);
  ASSERT_NE(other, nullptr);
  const json cases = Cases("smollm2_tokenizer");
  std::mt19937 rng(3);
  std::string noise;
  for (int i = 0; i < 60000; ++i) {
    noise += ' ';
    for (int k = 0; k < 3 + static_cast<int>(rng() % 6); ++k) noise.push_back('a' + rng() % 26);
  }
  for (int round = 0; round < 2; ++round) {
    for (const json& c : cases) {
      ASSERT_EQ(tok->Encode(c["text"].get<std::string>(), {.parse_special = true}), Ids(c["ids"]))
          << c["name"];
    }
    tok->Encode(noise);    // overflows the cache (cleared)
    other->Encode(noise);  // and takes the thread's second cache slot
  }
}

// ---- herd's byte tokenizer, read as an HF file ------------------------------------

TEST(HfTokenizer, ByteTokenizerJsonGivesByteTokenizerIds) {
  auto r = Tokenizer::FromJson(ByteTokenizer::TokenizerJson());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& tok = *r;
  EXPECT_EQ(tok->vocab_size(), kByteVocabSize);
  EXPECT_EQ(tok->TokenId("<|eot_id|>"), kEotId);
  EXPECT_TRUE(tok->IsSpecial(kEotId));
  EXPECT_FALSE(tok->IsSpecial('a'));
  std::mt19937 rng(11);
  std::vector<std::string> texts = {"", "Hi é", "a<|eot_id|>b<|eot_id", "\x00\x01\xFF\xC3",
                                    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>"};
  texts[3] = std::string("\x00\x01\xFF\xC3\x28\xED\xA0\x80", 8);
  for (int n = 0; n < 200; ++n) {
    std::string s;
    const int len = static_cast<int>(rng() % 300);
    for (int i = 0; i < len; ++i) {
      if (rng() % 20 == 0) {
        s += ByteTokenizer::SpecialText(256 + static_cast<int32_t>(rng() % 8));
      } else {
        s.push_back(static_cast<char>(rng() % 256));
      }
    }
    texts.push_back(s);
  }
  texts.push_back(std::string(5000, ' ') + std::string(3000, '\n'));
  for (const auto& s : texts) {
    for (bool special : {false, true}) {
      ASSERT_EQ(tok->Encode(s, {.parse_special = special}), ByteTokenizer::Encode(s, special));
    }
    const auto ids = ByteTokenizer::Encode(s, true);
    for (bool skip : {false, true}) {
      auto got = tok->DecodeBytes(ids, skip);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, *ByteTokenizer::DecodeBytes(ids, skip));
      EXPECT_EQ(*tok->Decode(ids, skip), *ByteTokenizer::Decode(ids, skip));
    }
  }
  EXPECT_EQ(tok->json(), ByteTokenizer::TokenizerJson());
}

// ---- what herd does not support, and malformed files ---------------------------

json ByteJson() { return json::parse(ByteTokenizer::TokenizerJson()); }

std::string LoadError(const json& j, std::string_view source = "tokenizer.json") {
  auto r = Tokenizer::FromJson(j.dump(), source);
  if (r.ok()) return "(loaded)";
  EXPECT_TRUE(r.status().IsInvalidArgument());
  return r.status().message();
}

TEST(HfTokenizer, UnsupportedTokenizersNameTheField) {
  json j = ByteJson();
  j["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}};
  EXPECT_THAT(LoadError(j), HasSubstr("tokenizer.json: unsupported tokenizer: pre_tokenizer.type: "
                                      "'Metaspace' (herd supports byte-level BPE"));

  j = ByteJson();
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Digits"}, {"individual_digits", true}}, {{"type", "Whitespace"}}}}};
  EXPECT_THAT(LoadError(j), HasSubstr("pre_tokenizer.pretokenizers[1].type: 'Whitespace'"));

  j = ByteJson();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "\\s+"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  EXPECT_THAT(LoadError(j),
              HasSubstr("unsupported tokenizer: pre_tokenizer: herd needs exactly one "
                        "ByteLevel step"));

  j = ByteJson();
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}}}};
  EXPECT_THAT(LoadError(j), HasSubstr("unsupported tokenizer: normalizer.type: 'Sequence'"));

  j = ByteJson();
  j["model"]["byte_fallback"] = true;
  EXPECT_THAT(LoadError(j), HasSubstr("unsupported tokenizer: model.byte_fallback: true"));

  j = ByteJson();
  j["model"]["type"] = "Unigram";
  EXPECT_THAT(LoadError(j), HasSubstr("unsupported tokenizer: model.type: 'Unigram'"));

  j = ByteJson();
  j["decoder"] = {{"type", "Metaspace"}};
  EXPECT_THAT(LoadError(j), HasSubstr("unsupported tokenizer: decoder.type: 'Metaspace'"));

  j = ByteJson();
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_THAT(LoadError(j), HasSubstr("pre_tokenizer.pattern"));

  // A TinyLlama / Llama 2 style file: the first unsupported field is named.
  j = ByteJson();
  j["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", "\u2581"}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}};
  j["pre_tokenizer"] = nullptr;
  j["model"]["byte_fallback"] = true;
  j["model"]["unk_token"] = "<unk>";
  EXPECT_THAT(LoadError(j, "tinyllama/tokenizer.json"),
              HasSubstr("tinyllama/tokenizer.json: unsupported tokenizer: normalizer.type"));
}

TEST(HfTokenizer, MalformedFilesNameTheSourceAndField) {
  auto bad = Tokenizer::FromJson("{not json", "x.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("x.json: not valid JSON"));

  json j = ByteJson();
  j["model"].erase("vocab");
  EXPECT_THAT(LoadError(j, "m.json"), HasSubstr("m.json: model.vocab: missing"));

  j = ByteJson();
  j["model"]["merges"] = {"a b"};
  EXPECT_THAT(LoadError(j), HasSubstr("model.merges[0]: token 'ab' is not in model.vocab"));

  j = ByteJson();
  j["model"]["merges"] = {"a b c"};
  EXPECT_THAT(LoadError(j), HasSubstr("model.merges[0]"));

  j = ByteJson();
  j["added_tokens"][0].erase("content");
  EXPECT_THAT(LoadError(j), HasSubstr("added_tokens[0].content: missing"));

  j = ByteJson();
  j.erase("model");
  EXPECT_THAT(LoadError(j), HasSubstr("model: missing"));

  // Ids that would size the tables far beyond the file (found by fuzzing:
  // a 8 KB file asked for 5 GB).
  j = ByteJson();
  j["added_tokens"][0]["id"] = 666666666;
  EXPECT_THAT(LoadError(j), HasSubstr("added_tokens[0].id: must be an id (an integer in [0, 2^24))"));
  j = ByteJson();
  j["added_tokens"][0]["id"] = 6666666;
  EXPECT_THAT(LoadError(j), HasSubstr("ids are sparse: the largest is 6666666"));

  auto missing = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/tokenizer.json"));
}

// Both merge spellings: "a b" strings (older files) and [a, b] pairs.
TEST(HfTokenizer, ReadsBothMergeSpellings) {
  json j = ByteJson();
  j["model"]["vocab"]["ab"] = 264;
  j["model"]["vocab"]["abc"] = 265;
  j["model"]["merges"] = {"a b", {"ab", "c"}};
  auto r = Tokenizer::FromJson(j.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->Encode("abcab"), (std::vector<int32_t>{265, 264}));
  EXPECT_EQ(*(*r)->Decode({265, 264}), "abcab");
}

}  // namespace
}  // namespace herd::model
