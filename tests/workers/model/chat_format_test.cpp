#include "workers/model/chat_format.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/testing/temp_dir.h"
#include "workers/model/hf_tokenizer.h"
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

// ---- chat templates --------------------------------------------------------

// SmolLM2-Instruct's template as the GGUF carries it (newlines are real).
constexpr const char* kSmolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, DetectsChatMLWithItsDefaultSystemPrompt) {
  auto t = DetectChatTemplate(kSmolTemplate);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, ChatTemplateKind::kChatML);
  EXPECT_EQ(t->default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_FALSE(t->trim_content);
}

TEST(ChatTemplate, DetectsLlama3AndWhetherItTrims) {
  const auto cfg = nlohmann::json::parse(ByteTokenizer::TokenizerConfigJson());
  auto herd = DetectChatTemplate(cfg["chat_template"].get<std::string>());
  ASSERT_TRUE(herd.ok()) << herd.status().ToString();
  EXPECT_EQ(herd->kind, ChatTemplateKind::kLlama3);
  EXPECT_FALSE(herd->trim_content);  // herd's own keeps content byte for byte

  auto meta = DetectChatTemplate(
      "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
      "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->kind, ChatTemplateKind::kLlama3);
  EXPECT_TRUE(meta->trim_content);
}

TEST(ChatTemplate, UnknownTemplatesAreClearErrors) {
  auto unknown = DetectChatTemplate("{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("chat_format"), std::string::npos)
      << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("[INST]"), std::string::npos);  // shows what it saw

  auto l31 = DetectChatTemplate(
      "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023<|eot_id|>");
  ASSERT_FALSE(l31.ok());
  EXPECT_NE(l31.status().message().find("Llama 3.1"), std::string::npos);

  EXPECT_FALSE(ParseChatTemplateName("mistral").ok());
  EXPECT_EQ(*ParseChatTemplateName("chatml"), ChatTemplateKind::kChatML);
}

TEST(ChatTemplate, HerdsJinjaIsDetectedAsWhatItRenders) {
  for (const ChatTemplate& t : {ChatTemplate{ChatTemplateKind::kLlama3, "", false},
                                ChatTemplate{ChatTemplateKind::kLlama3, "", true},
                                ChatTemplate{ChatTemplateKind::kChatML, "", false},
                                ChatTemplate{ChatTemplateKind::kChatML, "Be kind.", false}}) {
    auto back = DetectChatTemplate(ChatTemplateJinja(t));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->kind, t.kind);
    EXPECT_EQ(back->default_system, t.default_system);
    EXPECT_EQ(back->trim_content, t.trim_content);
  }
}

// Bytes (ids 0..255) plus ChatML's two markers, to check the ChatML layout
// token by token without a BPE vocabulary.
class ChatMLBytes final : public Tokenizer {
 public:
  static constexpr int32_t kStart = 256, kEnd = 257;
  int32_t vocab_size() const override { return 258; }
  std::optional<int32_t> TokenId(std::string_view t) const override {
    if (t == "<|im_start|>") return kStart;
    if (t == "<|im_end|>") return kEnd;
    return std::nullopt;
  }
  bool IsSpecial(int32_t id) const override { return id >= 256; }
  void EncodeAppend(std::string_view text, std::vector<int32_t>* out,
                    const EncodeOptions&) const override {
    for (unsigned char c : text) out->push_back(c);
  }
  Result<std::string> DecodeBytes(const std::vector<int32_t>& ids, bool skip) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id < 256) s.push_back(static_cast<char>(id));
      else if (!skip) s += id == kStart ? "<|im_start|>" : "<|im_end|>";
    }
    return s;
  }
  const std::string& json() const override { return json_; }

 private:
  std::string json_ = "{}";
};

TEST(ChatFormatChatML, ExactIdsMasksAndTheDefaultSystemTurn) {
  auto f = ChatFormatter::Create(std::make_shared<ChatMLBytes>(),
                                 ChatTemplate{ChatTemplateKind::kChatML, "Sys.", false});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->bos(), -1);  // ChatML has no BOS
  EXPECT_EQ(f->end_of_turn(), ChatMLBytes::kEnd);
  ChatFormatOptions o;
  o.add_generation_prompt = false;
  auto t = f->Format({{Role::kUser, "Hi"}, {Role::kAssistant, "Yo"}}, o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();

  Expect e;
  auto turn = [&](std::string_view role, std::string_view content, int32_t m, bool sft) {
    e.Id(ChatMLBytes::kStart, true, false, m);
    e.Add(role, true, false, m);
    e.Add("\n", true, false, m);
    e.Add(content, false, sft, m);
    e.Id(ChatMLBytes::kEnd, true, sft, m);  // the end of turn: trained for the assistant
    e.Add("\n", true, false, m);            // after it: formatting, never trained
  };
  turn("system", "Sys.", -1, false);  // the template's default, before message 0
  turn("user", "Hi", 0, false);
  turn("assistant", "Yo", 1, true);
  EXPECT_EQ(t->ids, e.ids);
  EXPECT_EQ(t->is_formatting, e.fmt);
  EXPECT_EQ(t->sft_target, e.sft);
  EXPECT_EQ(t->message_index, e.msg);

  // A conversation that has its own system turn gets no default; tool
  // output is "tool" in ChatML; the generation prompt is the bare header.
  o.add_generation_prompt = true;
  auto own = f->Format({{Role::kSystem, "S"}, {Role::kIpython, "42"}}, o);
  ASSERT_TRUE(own.ok());
  auto text = f->tokenizer().DecodeBytes(own->ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(own->message_index.back(), 2);
}

TEST(ChatFormatChatML, ATokenizerWithoutTheMarkersIsRefused) {
  auto f = ChatFormatter::Create(ByteTokenizer::Shared(), ChatTemplate{ChatTemplateKind::kChatML, "", false});
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("<|im_start|>"), std::string::npos) << f.status().message();
}

TEST(ChatFormatLlama3, TrimmingTemplatesTrimContent) {
  auto f = ChatFormatter::Create(ByteTokenizer::Shared(), ChatTemplate{ChatTemplateKind::kLlama3, "", true});
  ASSERT_TRUE(f.ok());
  auto trimmed = f->Format({{Role::kUser, "  hi \n"}});
  auto plain = FormatChat({{Role::kUser, "hi"}});
  ASSERT_TRUE(trimmed.ok() && plain.ok());
  EXPECT_EQ(trimmed->ids, plain->ids);
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(LoadChatFormatter, ByteCheckpointsAndClearErrors) {
  testing::TempDir dir("chatfmt");
  const std::string d = dir.path();
  // No tokenizer.json, herd's byte vocabulary: the byte tokenizer, Llama 3.
  WriteText(d + "/config.json", R"({"vocab_size": 264})");
  auto bytes = LoadChatFormatter(d);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(bytes->end_of_turn(), kEotId);
  EXPECT_EQ(bytes->chat_template().kind, ChatTemplateKind::kLlama3);
  // An override of the format that the tokenizer cannot do.
  auto chatml = LoadChatFormatter(d, {"", "chatml"});
  ASSERT_FALSE(chatml.ok());
  EXPECT_NE(chatml.status().message().find("<|im_start|>"), std::string::npos);
  auto bad = LoadChatFormatter(d, {"", "vicuna"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("chat_format"), std::string::npos) << bad.status().message();

  // Another vocabulary and no tokenizer: refused, not read as bytes.
  WriteText(d + "/config.json", R"({"vocab_size": 32000})");
  auto none = LoadChatFormatter(d);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no tokenizer.json"), std::string::npos);
  auto missing = LoadChatFormatter(d, {d + "/nowhere.json", ""});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nowhere.json"), std::string::npos);
  // A malformed list of named templates is an error, not an exception.
  WriteText(d + "/tokenizer.json", ByteTokenizer::TokenizerJson());
  WriteText(d + "/tokenizer_config.json",
            R"({"chat_template": [{"name": 7, "template": "x"}, {"name": "default", "template": 3}]})");
  WriteText(d + "/config.json", R"({"vocab_size": 264})");
  auto named = LoadChatFormatter(d);
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("no chat template"), std::string::npos) << named.status().message();

  // A path that is no file (it would read forever) is refused, not read.
  auto zero = LoadChatFormatter(d, {"/dev/zero", ""});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("not a regular file"), std::string::npos) << zero.status().message();
}

// ---- parity with transformers' apply_chat_template -------------------------

// tests/reference/make_chat_fixtures.py: each directory holds a real
// tokenizer.json, its chat template, and chat_cases.json with the ids
// transformers gives. Exact ids, except where content starts with
// whitespace (docs/chat-format.md: herd encodes content on its own), where
// the text must still be the same.
void CheckParity(const std::string& name, ChatTemplateKind want_kind) {
  const std::string dir = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/" + name;
  auto f = LoadChatFormatter(dir);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->chat_template().kind, want_kind);
  std::ifstream in(dir + "/chat_cases.json");
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 8u);
  int exact = 0, text_only = 0;
  for (const auto& c : cases) {
    std::vector<ChatMessage> msgs;
    for (const auto& m : c["messages"]) {
      msgs.push_back({*ParseRole(m["role"].get<std::string>()), m["content"].get<std::string>()});
    }
    ChatFormatOptions o;
    o.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    auto t = f->Format(msgs, o);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    if (c["content_starts_with_space"].get<bool>()) {
      EXPECT_EQ(*f->tokenizer().Decode(t->ids), *f->tokenizer().Decode(want)) << c["messages"].dump();
      ++text_only;
    } else {
      EXPECT_EQ(t->ids, want) << name << ": " << c["messages"].dump();
      ++exact;
    }
  }
  EXPECT_GE(exact, 8) << name;
  std::printf("%s: %d cases with exact ids, %d with equal text\n", name.c_str(), exact, text_only);
}

TEST(ChatTemplateParity, SmolLM2ChatMLEqualsTransformers) {
  CheckParity("smollm2_tokenizer", ChatTemplateKind::kChatML);
}

TEST(ChatTemplateParity, Llama3HeadersEqualTransformers) {
  CheckParity("llama3_style_tokenizer", ChatTemplateKind::kLlama3);
}

}  // namespace
}  // namespace herd::model
