#include "workers/model/chat_format.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/mapped_file.h"
#include "workers/model/hf_tokenizer.h"
#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLlama3Start = "<|start_header_id|>";
constexpr std::string_view kLlama3End = "<|end_header_id|>";
constexpr std::string_view kLlama3Eot = "<|eot_id|>";
constexpr std::string_view kLlama3Bos = "<|begin_of_text|>";
constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";

// Python's str.strip() / Jinja's trim for the ASCII whitespace Meta's
// template meets in practice.
std::string_view Trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The name a format gives a role: ChatML conversations call tool output "tool".
std::string_view RoleText(ChatTemplateKind k, Role r) {
  if (k == ChatTemplateKind::kChatML && r == Role::kIpython) return "tool";
  return RoleName(r);
}

// config.json, tokenizer_config.json, chat_template.jinja: small files.
Result<std::string> ReadFile(const std::string& path) { return ReadRegularFile(path, 16u << 20); }

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

const char* ChatTemplateName(ChatTemplateKind k) {
  return k == ChatTemplateKind::kChatML ? "chatml" : "llama3";
}

Result<ChatTemplateKind> ParseChatTemplateName(std::string_view name) {
  if (name == "llama3") return ChatTemplateKind::kLlama3;
  if (name == "chatml") return ChatTemplateKind::kChatML;
  return Status::InvalidArgument("chat format '" + std::string(name) +
                                 "' is not one of llama3, chatml");
}

Result<ChatTemplate> DetectChatTemplate(std::string_view jinja) {
  auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  ChatTemplate t;
  if (has(kLlama3Start) && has(kLlama3End) && has(kLlama3Eot)) {
    if (has("Cutting Knowledge Date")) {
      return Status::InvalidArgument(
          "chat template: Llama 3.1's template (it adds a dated system message) is not supported; "
          "set the run's chat_format to \"llama3\" for the plain Llama 3 header format");
    }
    t.kind = ChatTemplateKind::kLlama3;
    t.trim_content = has("| trim") || has("|trim");
    return t;
  }
  if (has(kImStart) && has(kImEnd)) {
    t.kind = ChatTemplateKind::kChatML;
    // A literal system turn in the template is its default system prompt.
    const std::string opener = std::string(kImStart) + "system\n";
    const size_t at = jinja.find(opener);
    if (at != std::string_view::npos) {
      const size_t from = at + opener.size();
      const size_t to = jinja.find(kImEnd, from);
      if (to == std::string_view::npos) {
        return Status::InvalidArgument("chat template: a ChatML system turn without <|im_end|>");
      }
      t.default_system = std::string(jinja.substr(from, to - from));
      if (t.default_system.find_first_of("{}'\"") != std::string::npos) {
        return Status::InvalidArgument(
            "chat template: ChatML with a computed system prompt is not supported; set the run's "
            "chat_format to \"chatml\" to use plain ChatML");
      }
    }
    return t;
  }
  std::string head(jinja.substr(0, 120));
  return Status::InvalidArgument(
      "chat template: not a format herd knows (Llama 3 headers or ChatML); it begins \"" + head +
      "\"; set the run's chat_format to \"llama3\" or \"chatml\" if the model was trained on one");
}

std::string DescribeChatTemplate(std::string_view jinja) {
  if (jinja.empty()) return "none";
  auto t = DetectChatTemplate(jinja);
  return t.ok() ? ChatTemplateName(t->kind) : "unknown";
}

std::string ChatTemplateJinja(const ChatTemplate& t) {
  if (t.kind == ChatTemplateKind::kLlama3) {
    const std::string content = t.trim_content ? "message['content'] | trim" : "message['content']";
    return "{{- bos_token }}"
           "{%- for message in messages %}"
           "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + " +
           content +
           " + '<|eot_id|>' }}"
           "{%- endfor %}"
           "{%- if add_generation_prompt %}"
           "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
           "{%- endif %}";
  }
  std::string s = "{%- for message in messages %}";
  if (!t.default_system.empty()) {
    s += "{%- if loop.first and messages[0]['role'] != 'system' %}{{- '<|im_start|>system\n" +
         t.default_system + "<|im_end|>\n' }}{%- endif %}";
  }
  s += "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
       "{%- endfor %}"
       "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
  return s;
}

Result<ChatFormatter> ChatFormatter::Create(std::shared_ptr<const Tokenizer> tokenizer,
                                            ChatTemplate tmpl) {
  if (!tokenizer) return Status::InvalidArgument("chat format: no tokenizer");
  ChatFormatter f;
  auto need = [&](std::string_view tok, int32_t* id) -> Status {
    auto got = tokenizer->TokenId(tok);
    if (!got) {
      return Status::InvalidArgument(std::string("chat format ") + ChatTemplateName(tmpl.kind) +
                                     ": the tokenizer has no token " + std::string(tok));
    }
    *id = *got;
    return Status::Ok();
  };
  if (tmpl.kind == ChatTemplateKind::kLlama3) {
    HERD_RETURN_IF_ERROR(need(kLlama3Bos, &f.bos_));
    HERD_RETURN_IF_ERROR(need(kLlama3Start, &f.start_));
    HERD_RETURN_IF_ERROR(need(kLlama3End, &f.end_header_));
    HERD_RETURN_IF_ERROR(need(kLlama3Eot, &f.end_of_turn_));
  } else {
    HERD_RETURN_IF_ERROR(need(kImStart, &f.start_));
    HERD_RETURN_IF_ERROR(need(kImEnd, &f.end_of_turn_));
  }
  f.tokenizer_ = std::move(tokenizer);
  f.template_ = std::move(tmpl);
  return f;
}

const ChatFormatter& ChatFormatter::Bytes() {
  static const ChatFormatter f = [] {
    auto r = Create(ByteTokenizer::Shared(), ChatTemplate{});
    return *std::move(r);  // the byte tokenizer has every Llama 3 special token
  }();
  return f;
}

void ChatFormatter::PushText(ChatTokens* out, std::string_view text, bool formatting,
                             int32_t message, Role role, bool sft) const {
  const size_t before = out->ids.size();
  tokenizer_->EncodeAppend(text, &out->ids);  // special-token text stays text
  const size_t added = out->ids.size() - before;
  out->is_formatting.insert(out->is_formatting.end(), added, formatting ? 1 : 0);
  out->message_index.insert(out->message_index.end(), added, message);
  out->role.insert(out->role.end(), added, role);
  out->sft_target.insert(out->sft_target.end(), added, sft ? 1 : 0);
}

namespace {
void PushId(ChatTokens* out, int32_t id, bool formatting, int32_t message, Role role, bool sft) {
  out->ids.push_back(id);
  out->is_formatting.push_back(formatting ? 1 : 0);
  out->message_index.push_back(message);
  out->role.push_back(role);
  out->sft_target.push_back(sft ? 1 : 0);
}
}  // namespace

// llama3: <|start_header_id|>{role}<|end_header_id|>\n\n; chatml:
// <|im_start|>{role}\n. All formatting, no loss.
void ChatFormatter::PushHeader(ChatTokens* out, int32_t message, Role role) const {
  const auto kind = template_.kind;
  PushId(out, start_, true, message, role, false);
  PushText(out, RoleText(kind, role), true, message, role, false);
  if (kind == ChatTemplateKind::kLlama3) {
    PushId(out, end_header_, true, message, role, false);
    PushText(out, "\n\n", true, message, role, false);
  } else {
    PushText(out, "\n", true, message, role, false);
  }
}

void ChatFormatter::PushTurn(ChatTokens* out, int32_t message, Role role,
                             std::string_view content) const {
  const bool train = role == Role::kAssistant;
  PushHeader(out, message, role);
  PushText(out, template_.trim_content ? Trim(content) : content, false, message, role, train);
  PushId(out, end_of_turn_, true, message, role, train);
  if (template_.kind == ChatTemplateKind::kChatML) PushText(out, "\n", true, message, role, false);
}

Status ChatFormatter::FormatInto(const std::vector<ChatMessage>& messages,
                                 const ChatFormatOptions& options, ChatTokens* out) const {
  out->clear();
  for (size_t m = 0; m < messages.size(); ++m) {
    if (messages[m].role == Role::kNone) {
      return Status::InvalidArgument("messages[" + std::to_string(m) + "].role: not set");
    }
  }
  if (options.add_bos && bos_ >= 0) PushId(out, bos_, true, -1, Role::kNone, false);
  if (!template_.default_system.empty() &&
      (messages.empty() || messages.front().role != Role::kSystem)) {
    // Like the template: only when the conversation has messages (HF
    // renders nothing for an empty one).
    if (!messages.empty()) PushTurn(out, -1, Role::kSystem, template_.default_system);
  }
  for (size_t m = 0; m < messages.size(); ++m) {
    PushTurn(out, static_cast<int32_t>(m), messages[m].role, messages[m].content);
  }
  if (options.add_generation_prompt) {
    PushHeader(out, static_cast<int32_t>(messages.size()), Role::kAssistant);
  }
  return Status::Ok();
}

Result<ChatTokens> ChatFormatter::Format(const std::vector<ChatMessage>& messages,
                                         const ChatFormatOptions& options) const {
  ChatTokens t;
  HERD_RETURN_IF_ERROR(FormatInto(messages, options, &t));
  return t;
}

std::string ChatFormatter::Text(const std::vector<int32_t>& ids) const {
  auto t = tokenizer_->Decode(ids, /*skip_special=*/true);
  return t.ok() ? *t : std::string();
}

Status FormatChatInto(const std::vector<ChatMessage>& messages, const ChatFormatOptions& options,
                      ChatTokens* out) {
  return ChatFormatter::Bytes().FormatInto(messages, options, out);
}

Result<ChatTokens> FormatChat(const std::vector<ChatMessage>& messages,
                              const ChatFormatOptions& options) {
  return ChatFormatter::Bytes().Format(messages, options);
}

Result<std::string> ReadChatTemplate(const std::string& checkpoint_dir, std::string* where) {
  std::error_code ec;
  const std::string jinja_path = (fs::path(checkpoint_dir) / "chat_template.jinja").string();
  const std::string config_path = (fs::path(checkpoint_dir) / "tokenizer_config.json").string();
  if (fs::exists(jinja_path, ec)) {
    if (where) *where = jinja_path;
    return ReadFile(jinja_path);
  }
  if (!fs::exists(config_path, ec)) return std::string();
  HERD_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(config_path + ": not a JSON object");
  }
  if (where) *where = config_path + ": chat_template";
  const auto it = j.find("chat_template");
  if (it != j.end() && it->is_string()) return it->get<std::string>();
  if (it != j.end() && it->is_array()) {  // named templates: take "default"
    for (const auto& e : *it) {
      // (value() would throw on a name that is not a string: check each type)
      if (e.is_object() && e.contains("name") && e["name"] == "default" && e.contains("template") &&
          e["template"].is_string()) {
        return e["template"].get<std::string>();
      }
    }
  }
  return std::string();
}

Result<ChatFormatter> LoadChatFormatter(const std::string& checkpoint_dir, const TextSource& source) {
  // The model's vocabulary (config.json's vocab_size), when it says.
  int64_t vocab = 0;
  {
    const std::string config_path = (fs::path(checkpoint_dir) / "config.json").string();
    auto text = ReadFile(config_path);
    if (text.ok()) {
      auto cfg = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (cfg.is_object() && cfg.contains("vocab_size") && cfg["vocab_size"].is_number_integer()) {
        vocab = cfg["vocab_size"].get<int64_t>();
      }
    }
  }

  // The tokenizer.
  std::string tok_path = source.tokenizer.empty() ? checkpoint_dir : source.tokenizer;
  std::error_code ec;
  if (fs::is_directory(tok_path, ec)) tok_path = (fs::path(tok_path) / "tokenizer.json").string();
  std::shared_ptr<const Tokenizer> tokenizer;
  bool bytes = false;
  if (!fs::exists(tok_path, ec)) {
    if (!source.tokenizer.empty()) return Status::NotFound("tokenizer: " + tok_path + " does not exist");
    // herd's tiny checkpoints saved without tokenizer files.
    if (vocab != kByteVocabSize) {
      return Status::InvalidArgument(checkpoint_dir + ": no tokenizer.json (and the vocabulary of " +
                                     std::to_string(vocab) +
                                     " is not herd's byte tokenizer's); give the run a tokenizer");
    }
    tokenizer = ByteTokenizer::Shared();
    bytes = true;
  } else {
    HERD_ASSIGN_OR_RETURN(tokenizer, Tokenizer::FromFile(tok_path));
  }
  if (vocab > 0 && tokenizer->vocab_size() > vocab) {
    return Status::InvalidArgument(tok_path + ": the tokenizer has " +
                                   std::to_string(tokenizer->vocab_size()) +
                                   " tokens but the model's config.json vocab_size is " +
                                   std::to_string(vocab));
  }

  // The chat template.
  ChatTemplate tmpl;
  if (!source.chat_format.empty()) {
    auto kind = ParseChatTemplateName(source.chat_format);
    if (!kind.ok()) return kind.status().WithContext("chat_format");
    tmpl.kind = *kind;
  } else if (!bytes) {
    std::string where;
    HERD_ASSIGN_OR_RETURN(std::string jinja, ReadChatTemplate(checkpoint_dir, &where));
    if (jinja.empty()) {
      return Status::InvalidArgument(checkpoint_dir +
                                     ": no chat template (chat_template.jinja or tokenizer_config.json's "
                                     "chat_template); set the run's chat_format to \"llama3\" or \"chatml\"");
    }
    auto detected = DetectChatTemplate(jinja);
    if (!detected.ok()) return detected.status().WithContext(where);
    tmpl = *std::move(detected);
  }
  auto f = ChatFormatter::Create(std::move(tokenizer), std::move(tmpl));
  if (!f.ok()) return f.status().WithContext(tok_path);
  return f;
}

}  // namespace herd::model
