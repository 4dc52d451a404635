#include "workers/model/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "workers/model/chat_format.h"

namespace herd::model {
namespace {

using nlohmann::json;

const std::string kGoldenDir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/byte_tokenizer";

std::vector<int32_t> Bytes(std::string_view s) {
  std::vector<int32_t> v;
  for (unsigned char c : s) v.push_back(c);
  return v;
}

TEST(ByteTokenizer, EncodesBytesAndSpecialsOnlyWhenAsked) {
  EXPECT_EQ(ByteTokenizer::Encode("Hi é"), (std::vector<int32_t>{72, 105, 32, 0xC3, 0xA9}));
  const std::string text = "a<|eot_id|>b<|eot_id";
  // Plain: every byte, no control token can be injected by text.
  EXPECT_EQ(ByteTokenizer::Encode(text), Bytes(text));
  // Asked: the complete special becomes its id; the partial one stays bytes.
  std::vector<int32_t> want = {'a', kEotId, 'b'};
  for (int32_t b : Bytes("<|eot_id")) want.push_back(b);
  EXPECT_EQ(ByteTokenizer::Encode(text, /*parse_special=*/true), want);
  EXPECT_EQ(ByteTokenizer::Encode("<|begin_of_text|><|start_header_id|><|end_header_id|>", true),
            (std::vector<int32_t>{kBeginOfText, kStartHeaderId, kEndHeaderId}));
  EXPECT_TRUE(ByteTokenizer::Encode("").empty());
}

TEST(ByteTokenizer, SpecialIdsAreStable) {
  // These ids are a contract with saved checkpoints: never renumber.
  EXPECT_EQ(ByteTokenizer::SpecialId("<|begin_of_text|>"), 256);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|end_of_text|>"), 257);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|start_header_id|>"), 258);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|end_header_id|>"), 259);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|eot_id|>"), 260);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|eom_id|>"), 261);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|python_tag|>"), 262);
  EXPECT_EQ(ByteTokenizer::SpecialId("<|finetune_right_pad_id|>"), 263);
  EXPECT_FALSE(ByteTokenizer::SpecialId("<|eot|>").has_value());
  EXPECT_EQ(ByteTokenizer::vocab_size(), 264);
  EXPECT_EQ(ByteTokenizer::SpecialText(65), nullptr);
  EXPECT_EQ(ByteTokenizer::SpecialText(264), nullptr);
}

TEST(ByteTokenizer, AnyByteStringRoundTrips) {
  std::mt19937 g(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s(g() % 64, '\0');
    for (char& c : s) c = static_cast<char>(g());
    auto back = ByteTokenizer::DecodeBytes(ByteTokenizer::Encode(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
}

TEST(ByteTokenizer, DecodeReplacesInvalidUtf8PerMaximalSubpart) {
  auto dec = [](std::vector<int32_t> ids) { return ByteTokenizer::Decode(ids).value(); };
  const std::string R = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(dec({0xC3, 0xA9}), "\xC3\xA9");              // valid é
  EXPECT_EQ(dec({0xC3}), R);                             // truncated 2-byte
  EXPECT_EQ(dec({'a', 0xF0, 0x9F, 0x98, 'b'}), "a" + R + "b");  // truncated 4-byte: one U+FFFD
  EXPECT_EQ(dec({0xED, 0xA0, 0x80}), R + R + R);         // surrogate: each byte
  EXPECT_EQ(dec({0xC0, 0xAF}), R + R);                   // overlong
  EXPECT_EQ(dec({0xF4, 0x90, 0x80, 0x80}), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(dec({0xFF, 'x'}), R + "x");
  EXPECT_EQ(dec({0xE2, 0x82, 'x'}), R + "x");
  EXPECT_EQ(dec({'h', 'i', kEotId}), "hi<|eot_id|>");
  EXPECT_EQ(ByteTokenizer::Decode({'h', kEotId, 'i'}, /*skip_special=*/true).value(), "hi");
  auto bad = ByteTokenizer::Decode({1, 2, 264});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("position 2"), std::string::npos);
  EXPECT_FALSE(ByteTokenizer::Decode({-1}).ok());
}

TEST(ByteTokenizer, TokenizerJsonHasTheByteAlphabetAndSpecials) {
  const json j = json::parse(ByteTokenizer::TokenizerJson());
  const json& vocab = j["model"]["vocab"];
  EXPECT_EQ(vocab.size(), 264u);
  EXPECT_EQ(vocab["A"], 65);
  EXPECT_EQ(vocab["\xC4\xA0"], 32);   // space is U+0120 'Ġ' in the ByteLevel alphabet
  EXPECT_EQ(vocab["\xC4\x8A"], 10);   // '\n' is U+010A 'Ċ'
  EXPECT_EQ(vocab["\xC4\x80"], 0);    // byte 0 is U+0100
  EXPECT_EQ(vocab["\xC3\xBF"], 255);  // ÿ stands for itself
  EXPECT_TRUE(j["model"]["merges"].empty());
  ASSERT_EQ(j["added_tokens"].size(), 8u);
  EXPECT_EQ(j["added_tokens"][4]["content"], "<|eot_id|>");
  EXPECT_EQ(j["added_tokens"][4]["id"], 260);
  const json c = json::parse(ByteTokenizer::TokenizerConfigJson());
  EXPECT_EQ(c["bos_token"], "<|begin_of_text|>");
  EXPECT_EQ(c["eos_token"], "<|eot_id|>");
  EXPECT_NE(c["chat_template"].get<std::string>().find("add_generation_prompt"), std::string::npos);
}

// The cases tests/reference/check_tokenizer.py replays in transformers. The
// committed files are what this code writes; HERD_UPDATE_GOLDEN=1 rewrites
// them after an intended change.
json GoldenCases() {
  json out;
  json enc = json::array();
  for (const char* t : {"hello world", "  two leading spaces, trailing  ", "tabs\tand\nnewlines\r\n",
                        "na\xC3\xAFve caf\xC3\xA9", "llama \xF0\x9F\xA6\x99!",
                        "\xE4\xB8\xAD\xE6\x96\x87 / \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                        "\x01\x7f control", ""}) {
    enc.push_back({{"text", t}, {"ids", ByteTokenizer::Encode(t)}});
  }
  out["encode"] = enc;
  json dec = json::array();
  for (const std::vector<int32_t>& ids : std::vector<std::vector<int32_t>>{
           {0xC3}, {'a', 0xF0, 0x9F, 0x98, 'b'}, {0xED, 0xA0, 0x80}, {0xC0, 0xAF},
           {0xF4, 0x90, 0x80, 0x80}, {0xFF, 0xFE, 'z'}, {0xE2, 0x82, 'x'}, {'h', 'i', kEotId},
           {0xF0, 0x9F, 0xA6, 0x99}}) {
    dec.push_back({{"ids", ids}, {"text", ByteTokenizer::Decode(ids).value()}});
  }
  out["decode"] = dec;
  using M = std::vector<ChatMessage>;
  struct Case {
    M messages;
    bool gen;
  };
  const std::vector<Case> chats = {
      {{{Role::kSystem, "You are terse."}, {Role::kUser, "2+2?"}, {Role::kAssistant, "4"}}, false},
      {{{Role::kUser, "Gr\xC3\xBC\xC3\x9F dich \xF0\x9F\x91\x8B"}, {Role::kAssistant, "Hallo!\n\nWie geht's?"}},
       false},
      {{{Role::kUser, "  spaced  "}, {Role::kAssistant, "call"}, {Role::kIpython, "{\"x\": 1}"}},
       true},
      {{{Role::kSystem, ""}, {Role::kUser, "empty system above"}}, true},
  };
  json chat = json::array();
  for (const Case& c : chats) {
    json msgs = json::array();
    for (const ChatMessage& m : c.messages) msgs.push_back({{"role", RoleName(m.role)}, {"content", m.content}});
    ChatFormatOptions o;
    o.add_generation_prompt = c.gen;
    auto t = FormatChat(c.messages, o);
    chat.push_back({{"messages", msgs},
                    {"add_generation_prompt", c.gen},
                    {"ids", t->ids},
                    {"is_formatting", t->is_formatting},
                    {"sft_target", t->sft_target}});
  }
  out["chat"] = chat;
  return out;
}

std::string ReadText(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ByteTokenizerGolden, MatchesTheCommittedHfFiles) {
  const std::string cases = GoldenCases().dump(1) + "\n";
  const char* update = std::getenv("HERD_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(kGoldenDir + "/tokenizer.json", std::ios::binary) << ByteTokenizer::TokenizerJson();
    std::ofstream(kGoldenDir + "/tokenizer_config.json", std::ios::binary)
        << ByteTokenizer::TokenizerConfigJson();
    std::ofstream(kGoldenDir + "/cases.json", std::ios::binary) << cases;
  }
  EXPECT_EQ(ReadText(kGoldenDir + "/tokenizer.json"), ByteTokenizer::TokenizerJson())
      << "tokenizer.json changed; rerun with HERD_UPDATE_GOLDEN=1 and check_tokenizer.py";
  EXPECT_EQ(ReadText(kGoldenDir + "/tokenizer_config.json"), ByteTokenizer::TokenizerConfigJson());
  EXPECT_EQ(ReadText(kGoldenDir + "/cases.json"), cases);
}

}  // namespace
}  // namespace herd::model
