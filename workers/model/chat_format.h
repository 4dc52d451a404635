#pragma once
// Chat formats: how a conversation becomes tokens for a given tokenizer.
//
//   llama3   <|begin_of_text|>
//            <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>   (per message)
//            [<|start_header_id|>assistant<|end_header_id|>\n\n]                 (generation prompt)
//   chatml   [<|im_start|>system\n{default system prompt}<|im_end|>\n]          (template's default)
//            <|im_start|>{role}\n{content}<|im_end|>\n                          (per message)
//            [<|im_start|>assistant\n]                                          (generation prompt)
//
// Every token carries flags: formatting or content (the mask DPO uses),
// which message and role it belongs to, and whether SFT trains on it.
// Special tokens are placed only by the formatter; message content is
// encoded with special-token parsing off. Content is encoded on its own, so
// no token ever spans formatting and content. See docs/chat-format.md.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::model {

class Tokenizer;

enum class Role : uint8_t { kSystem, kUser, kAssistant, kIpython, kNone /* BOS only */ };

const char* RoleName(Role r);                  // "system", "user", "assistant", "ipython"
Result<Role> ParseRole(std::string_view name);  // InvalidArgument for any other name

struct ChatMessage {
  Role role = Role::kUser;
  std::string content;  // bytes, encoded as-is (special-token text stays plain text)
};

struct ChatFormatOptions {
  bool add_bos = true;                 // Default: true (the format's BOS first, where it has one)
  bool add_generation_prompt = false;  // Default: false; true appends the assistant header
};

// Parallel per-token arrays, all of size() entries.
struct ChatTokens {
  std::vector<int32_t> ids;
  // 1 for the BOS, headers (start/end markers, the role name, the newlines
  // after it) and the end-of-turn token (and ChatML's "\n" after it); 0 for
  // content.
  std::vector<uint8_t> is_formatting;
  // Index of the message the token belongs to; -1 for BOS and a template's
  // default system turn; messages.size() for the generation-prompt header.
  std::vector<int32_t> message_index;
  std::vector<Role> role;  // the message's role (kNone for BOS)
  // 1 where SFT puts loss on predicting this token: assistant content and
  // the assistant's end-of-turn token; 0 elsewhere (prompt, headers).
  std::vector<uint8_t> sft_target;

  size_t size() const { return ids.size(); }
  void clear();
};

enum class ChatTemplateKind : uint8_t { kLlama3, kChatML };

const char* ChatTemplateName(ChatTemplateKind k);  // "llama3", "chatml"
// The run config's chat_format: "llama3" | "chatml"; anything else is
// InvalidArgument listing the names.
Result<ChatTemplateKind> ParseChatTemplateName(std::string_view name);

// What herd reads out of a checkpoint's Jinja chat template.
struct ChatTemplate {
  ChatTemplateKind kind = ChatTemplateKind::kLlama3;
  // chatml: the system prompt the template inserts when the conversation
  // has none (SmolLM2's "You are a helpful AI assistant named SmolLM, ...").
  // Default: "" (none).
  std::string default_system;
  // llama3: Meta's template strips each message's content (`| trim`).
  // Default: false (herd's own template keeps content byte for byte).
  bool trim_content = false;
};

// Recognises a Jinja chat template: Llama 3 headers (<|start_header_id|>,
// <|end_header_id|>, <|eot_id|>) or ChatML (<|im_start|>, <|im_end|>).
// Anything else, or Llama 3.1's template (it injects a dated system
// message), is InvalidArgument saying what was seen and how to choose a
// format explicitly.
Result<ChatTemplate> DetectChatTemplate(std::string_view jinja);

// What DetectChatTemplate makes of a template, for people: "llama3",
// "chatml", "none" for an empty one, "unknown" when herd cannot use it.
std::string DescribeChatTemplate(std::string_view jinja);

// The Jinja text of herd's rendering of a format (what checkpoints carry
// when a run overrides the format): apply_chat_template with it gives the
// ids Format gives, for content without special-token text.
std::string ChatTemplateJinja(const ChatTemplate& t);

// A tokenizer and a chat format together. Copyable and cheap; immutable.
class ChatFormatter {
 public:
  // Checks that the tokenizer has the format's special tokens
  // (InvalidArgument naming the missing one).
  static Result<ChatFormatter> Create(std::shared_ptr<const Tokenizer> tokenizer, ChatTemplate tmpl);
  // herd's byte tokenizer with the Llama 3 format (the tiny models').
  static const ChatFormatter& Bytes();

  // Formats into out (cleared first; its capacity is reused).
  Status FormatInto(const std::vector<ChatMessage>& messages, const ChatFormatOptions& options,
                    ChatTokens* out) const;
  Result<ChatTokens> Format(const std::vector<ChatMessage>& messages,
                            const ChatFormatOptions& options = {}) const;

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::shared_ptr<const Tokenizer>& shared_tokenizer() const { return tokenizer_; }
  const ChatTemplate& chat_template() const { return template_; }
  // The token that ends a turn (<|eot_id|> or <|im_end|>): generation stops on it.
  int32_t end_of_turn() const { return end_of_turn_; }
  // The format's BOS (<|begin_of_text|>), or -1 when it has none (ChatML).
  int32_t bos() const { return bos_; }
  // Text of ids with special tokens dropped, as valid UTF-8.
  std::string Text(const std::vector<int32_t>& ids) const;

 private:
  void PushText(ChatTokens* out, std::string_view text, bool formatting, int32_t message, Role role,
                bool sft) const;
  void PushHeader(ChatTokens* out, int32_t message, Role role) const;
  void PushTurn(ChatTokens* out, int32_t message, Role role, std::string_view content) const;

  std::shared_ptr<const Tokenizer> tokenizer_;
  ChatTemplate template_;
  int32_t bos_ = -1;
  int32_t start_ = -1;        // <|start_header_id|> or <|im_start|>
  int32_t end_header_ = -1;   // <|end_header_id|> (llama3)
  int32_t end_of_turn_ = -1;  // <|eot_id|> or <|im_end|>
};

// herd's byte formatter (ChatFormatter::Bytes()), for callers and tests of
// the tiny models.
Status FormatChatInto(const std::vector<ChatMessage>& messages, const ChatFormatOptions& options,
                      ChatTokens* out);
Result<ChatTokens> FormatChat(const std::vector<ChatMessage>& messages,
                              const ChatFormatOptions& options = {});

// Where a checkpoint's text handling comes from, with a run's overrides.
struct TextSource {
  // A tokenizer.json, or a directory holding one. Default: "" (the checkpoint's).
  std::string tokenizer;
  // "llama3" | "chatml". Default: "" (detected from the checkpoint's chat template).
  std::string chat_format;
};

// A checkpoint's Jinja chat template, as transformers finds it:
// chat_template.jinja, else tokenizer_config.json's chat_template (a string,
// or the "default" entry of a list of named templates); "" when it has
// none. *where (when given) names the file it came from.
Result<std::string> ReadChatTemplate(const std::string& checkpoint_dir, std::string* where = nullptr);

// The formatter for a checkpoint directory: its tokenizer.json (or
// source.tokenizer) and its chat template (chat_template.jinja, else
// tokenizer_config.json's chat_template; or source.chat_format). A
// directory with no tokenizer.json whose config has herd's byte vocabulary
// (264) is read as herd's byte tokenizer with the Llama 3 format. Errors
// name the file and field.
Result<ChatFormatter> LoadChatFormatter(const std::string& checkpoint_dir,
                                        const TextSource& source = {});

}  // namespace herd::model
