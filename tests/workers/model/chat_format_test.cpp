#include "workers/model/chat_format.h"

#include <gtest/gtest.h>

#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

// Builds the expectation by hand from the format's definition.
struct Expect {
  std::vector<int32_t> ids;
  std::vector<uint8_t> fmt, sft;
  std::vector<int32_t> msg;
  void Add(std::string_view bytes, bool f, bool s, int32_t m) {
    for (unsigned char c : bytes) Id(c, f, s, m);
  }
  void Id(int32_t id, bool f, bool s, int32_t m) {
    ids.push_back(id);
    fmt.push_back(f);
    sft.push_back(s);
    msg.push_back(m);
  }
  void Header(std::string_view role, int32_t m) {
    Id(258, true, false, m);
    Add(role, true, false, m);
    Id(259, true, false, m);
    Id(10, true, false, m);
    Id(10, true, false, m);
  }
};

TEST(ChatFormat, KnownConversationGivesExactIdsAndMasks) {
  const std::vector<ChatMessage> msgs = {
      {Role::kSystem, "Be brief."}, {Role::kUser, "caf\xC3\xA9?"}, {Role::kAssistant, "Oui."}};
  auto t = FormatChat(msgs);
  ASSERT_TRUE(t.ok()) << t.status().ToString();

  Expect e;
  e.Id(256, true, false, -1);
  e.Header("system", 0);
  e.Add("Be brief.", false, false, 0);
  e.Id(260, true, false, 0);
  e.Header("user", 1);
  e.Add("caf\xC3\xA9?", false, false, 1);
  e.Id(260, true, false, 1);
  e.Header("assistant", 2);
  e.Add("Oui.", false, true, 2);  // assistant content: SFT target
  e.Id(260, true, true, 2);       // its <|eot_id|>: formatting AND SFT target
  EXPECT_EQ(t->ids, e.ids);
  EXPECT_EQ(t->is_formatting, e.fmt);
  EXPECT_EQ(t->sft_target, e.sft);
  EXPECT_EQ(t->message_index, e.msg);
  ASSERT_EQ(t->role.size(), t->ids.size());
  EXPECT_EQ(t->role[0], Role::kNone);
  EXPECT_EQ(t->role[1], Role::kSystem);
  EXPECT_EQ(t->role.back(), Role::kAssistant);

  // A few literal spot checks of the layout: 1 + (1+6+1+2) + 9 + 1 = 21
  // tokens for the system turn; the user header starts at 21.
  EXPECT_EQ(t->ids[21], kStartHeaderId);
  EXPECT_EQ(t->ids.size(), 21u + (1 + 4 + 1 + 2) + 6 + 1 + (1 + 9 + 1 + 2) + 4 + 1);

  // Decoding gives the text the HF chat template renders.
  EXPECT_EQ(ByteTokenizer::Decode(t->ids).value(),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\ncaf\xC3\xA9?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nOui.<|eot_id|>");
}

TEST(ChatFormat, GenerationPromptAndOptions) {
  const std::vector<ChatMessage> msgs = {{Role::kUser, "hi"}};
  ChatFormatOptions o;
  o.add_generation_prompt = true;
  o.add_bos = false;
  auto t = FormatChat(msgs, o);
  ASSERT_TRUE(t.ok());
  Expect e;
  e.Header("user", 0);
  e.Add("hi", false, false, 0);
  e.Id(260, true, false, 0);
  e.Header("assistant", 1);  // the open assistant turn: message index = messages.size()
  EXPECT_EQ(t->ids, e.ids);
  EXPECT_EQ(t->is_formatting, e.fmt);
  EXPECT_EQ(t->message_index, e.msg);
  for (uint8_t s : t->sft_target) EXPECT_EQ(s, 0);  // nothing to train on yet
}

TEST(ChatFormat, ContentIsNeverParsedForSpecialTokens) {
  auto t = FormatChat({{Role::kUser, "<|eot_id|>"}});
  ASSERT_TRUE(t.ok());
  int eots = 0;
  for (int32_t id : t->ids) eots += id == kEotId;
  EXPECT_EQ(eots, 1);  // only the real end of turn
}

TEST(ChatFormat, IpythonRoleAndErrors) {
  auto t = FormatChat({{Role::kIpython, "42"}});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(ByteTokenizer::DecodeBytes(t->ids).value(),
            "<|begin_of_text|><|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>");
  EXPECT_EQ(*ParseRole("assistant"), Role::kAssistant);
  EXPECT_EQ(*ParseRole("ipython"), Role::kIpython);
  EXPECT_EQ(*ParseRole("tool"), Role::kIpython);  // the ingestion's alias
  auto bad = ParseRole("robot");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'robot'"), std::string::npos);
  auto none = FormatChat({{Role::kUser, "a"}, {Role::kNone, "b"}});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("messages[1].role"), std::string::npos);
}

TEST(ChatFormat, ReusesTheOutput) {
  ChatTokens t;
  ASSERT_TRUE(FormatChatInto({{Role::kUser, "a long first message"}}, {}, &t).ok());
  const size_t cap = t.ids.capacity();
  ASSERT_TRUE(FormatChatInto({{Role::kUser, "b"}}, {}, &t).ok());
  EXPECT_EQ(t.ids.capacity(), cap);
  EXPECT_EQ(t.size(), 1u + 8u + 1u + 1u);
  EXPECT_EQ(t.is_formatting.size(), t.size());
  EXPECT_EQ(t.role.size(), t.size());
}

}  // namespace
}  // namespace herd::model
