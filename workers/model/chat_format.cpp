#include "workers/model/chat_format.h"

#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

// Appends ids with one set of flags.
void Push(ChatTokens* out, std::string_view bytes, bool formatting, int32_t message, Role role,
          bool sft) {
  const size_t before = out->ids.size();
  ByteTokenizer::EncodeAppend(bytes, &out->ids);
  const size_t added = out->ids.size() - before;
  out->is_formatting.insert(out->is_formatting.end(), added, formatting ? 1 : 0);
  out->message_index.insert(out->message_index.end(), added, message);
  out->role.insert(out->role.end(), added, role);
  out->sft_target.insert(out->sft_target.end(), added, sft ? 1 : 0);
}

void PushId(ChatTokens* out, int32_t id, bool formatting, int32_t message, Role role, bool sft) {
  out->ids.push_back(id);
  out->is_formatting.push_back(formatting ? 1 : 0);
  out->message_index.push_back(message);
  out->role.push_back(role);
  out->sft_target.push_back(sft ? 1 : 0);
}

// <|start_header_id|>{role}<|end_header_id|>\n\n, all formatting, no loss.
void PushHeader(ChatTokens* out, int32_t message, Role role) {
  PushId(out, kStartHeaderId, true, message, role, false);
  Push(out, RoleName(role), true, message, role, false);
  PushId(out, kEndHeaderId, true, message, role, false);
  Push(out, "\n\n", true, message, role, false);
}

}  // namespace

const char* RoleName(Role r) {
  switch (r) {
    case Role::kSystem: return "system";
    case Role::kUser: return "user";
    case Role::kAssistant: return "assistant";
    case Role::kIpython: return "ipython";
    case Role::kNone: return "";
  }
  return "";
}

Result<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kSystem, Role::kUser, Role::kAssistant, Role::kIpython}) {
    if (name == RoleName(r)) return r;
  }
  if (name == "tool") return Role::kIpython;  // the OpenAI name for a tool's output
  return Status::InvalidArgument("role '" + std::string(name) +
                                 "' is not one of system, user, assistant, ipython (or tool)");
}

void ChatTokens::clear() {
  ids.clear();
  is_formatting.clear();
  message_index.clear();
  role.clear();
  sft_target.clear();
}

Status FormatChatInto(const std::vector<ChatMessage>& messages, const ChatFormatOptions& options,
                      ChatTokens* out) {
  out->clear();
  for (size_t m = 0; m < messages.size(); ++m) {
    if (messages[m].role == Role::kNone) {
      return Status::InvalidArgument("messages[" + std::to_string(m) + "].role: not set");
    }
  }
  if (options.add_bos) PushId(out, kBeginOfText, true, -1, Role::kNone, false);
  for (size_t m = 0; m < messages.size(); ++m) {
    const auto idx = static_cast<int32_t>(m);
    const Role role = messages[m].role;
    const bool train = role == Role::kAssistant;
    PushHeader(out, idx, role);
    Push(out, messages[m].content, false, idx, role, train);
    PushId(out, kEotId, true, idx, role, train);
  }
  if (options.add_generation_prompt) {
    PushHeader(out, static_cast<int32_t>(messages.size()), Role::kAssistant);
  }
  return Status::Ok();
}

Result<ChatTokens> FormatChat(const std::vector<ChatMessage>& messages,
                              const ChatFormatOptions& options) {
  ChatTokens t;
  HERD_RETURN_IF_ERROR(FormatChatInto(messages, options, &t));
  return t;
}

}  // namespace herd::model
