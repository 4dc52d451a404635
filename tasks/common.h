#pragma once
// Parts several task contracts share: chat messages, prompts, and the
// description of a checkpoint a task wrote.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/field_reader.h"

namespace herd::tasks {

struct Message {
  std::string role;     // required: a role of the chat format (docs/chat-format.md)
  std::string content;  // required
  bool operator==(const Message&) const = default;
};

struct Prompt {
  std::string id;                 // required: the prompt's id in the run
  std::vector<Message> messages;  // required: the conversation so far
  bool operator==(const Prompt&) const = default;
};

// A checkpoint directory a task wrote (HF layout).
struct CheckpointInfo {
  std::string sha256;         // digest of the directory's files. Default: ""
  uint64_t size_bytes = 0;    // Default: 0
  std::string config_sha256;  // digest of config.json. Default: ""
  bool operator==(const CheckpointInfo&) const = default;
};

// How a task turns chat messages into tokens, when a run overrides what its
// checkpoints carry (docs/chat-format.md). Empty: the checkpoint's own
// tokenizer.json and chat template.
struct TextFormat {
  std::string tokenizer;    // a tokenizer.json, or a directory with one. Default: "" (the checkpoint's)
  std::string chat_format;  // "llama3" | "chatml". Default: "" (the checkpoint's chat template)
  bool empty() const { return tokenizer.empty() && chat_format.empty(); }
  bool operator==(const TextFormat&) const = default;
};

// What a task needs of the worker that runs it.
struct Requirements {
  std::string device = "cpu";     // "cpu" | "cuda". Default: cpu
  int64_t min_memory_bytes = 0;   // Default: 0
  bool operator==(const Requirements&) const = default;
};

// The four preference strengths of Llama 3 §4.2.1, strongest first.
inline const std::vector<std::string>& AllStrengths() {
  static const std::vector<std::string> k = {"significantly_better", "better", "slightly_better",
                                             "marginally_better"};
  return k;
}

nlohmann::json ToJson(const Message& m);
nlohmann::json ToJson(const std::vector<Message>& ms);
nlohmann::json ToJson(const Prompt& p);
nlohmann::json ToJson(const std::vector<Prompt>& ps);
nlohmann::json ToJson(const CheckpointInfo& c);
nlohmann::json ToJson(const TextFormat& t);
// Adds "text" to a spec's JSON unless t is empty (older workers and specs
// never see the field).
void PutText(nlohmann::json* spec, const TextFormat& t);
// Reads the optional "text" object of a spec.
void ReadText(FieldReader& r, TextFormat* t);
void Read(FieldReader& r, Message* m);
void ReadMessages(FieldReader& r, const std::string& key, std::vector<Message>* out, bool required);
void ReadPrompts(FieldReader& r, const std::string& key, std::vector<Prompt>* out, bool required);
void Read(FieldReader& r, CheckpointInfo* c);
std::string Encode(const Requirements& q);
// Lenient: a missing or unreadable field keeps its default.
Requirements DecodeRequirements(const std::string& text);

}  // namespace herd::tasks
