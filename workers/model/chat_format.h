#pragma once
// The Llama 3 dialog format over the byte tokenizer:
//   <|begin_of_text|>
//   <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>   (per message)
//   [<|start_header_id|>assistant<|end_header_id|>\n\n]                 (add_generation_prompt)
// Every token carries flags: formatting or content (the mask DPO uses),
// which message and role it belongs to, and whether SFT trains on it.
// See docs/chat-format.md.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::model {

enum class Role : uint8_t { kSystem, kUser, kAssistant, kIpython, kNone /* BOS only */ };

const char* RoleName(Role r);                  // "system", "user", "assistant", "ipython"
Result<Role> ParseRole(std::string_view name);  // InvalidArgument for any other name

struct ChatMessage {
  Role role = Role::kUser;
  std::string content;  // bytes, encoded as-is (special-token text stays plain bytes)
};

struct ChatFormatOptions {
  bool add_bos = true;                 // Default: true (<|begin_of_text|> first)
  bool add_generation_prompt = false;  // Default: false; true appends the assistant header
};

// Parallel per-token arrays, all of size() entries.
struct ChatTokens {
  std::vector<int32_t> ids;
  // 1 for <|begin_of_text|>, <|start_header_id|>, the role name,
  // <|end_header_id|>, the "\n\n" after it, and <|eot_id|>; 0 for content.
  std::vector<uint8_t> is_formatting;
  // Index of the message the token belongs to; -1 for <|begin_of_text|>;
  // messages.size() for the generation-prompt header.
  std::vector<int32_t> message_index;
  std::vector<Role> role;  // the message's role (kNone for <|begin_of_text|>)
  // 1 where SFT puts loss on predicting this token: assistant content and
  // the assistant's <|eot_id|>; 0 elsewhere (prompt, headers).
  std::vector<uint8_t> sft_target;

  size_t size() const { return ids.size(); }
  void clear();
};

// Formats into out (cleared first; its capacity is reused).
Status FormatChatInto(const std::vector<ChatMessage>& messages, const ChatFormatOptions& options,
                      ChatTokens* out);
Result<ChatTokens> FormatChat(const std::vector<ChatMessage>& messages,
                              const ChatFormatOptions& options = {});

}  // namespace herd::model
