#include "tasks/common.h"

#include "tasks/protocol.h"

namespace herd::tasks {

using nlohmann::json;

Status CheckProtocol(int theirs, const std::string& who) {
  if (theirs == kProtocolVersion) return Status::Ok();
  const std::string newer = theirs > kProtocolVersion ? who : (who == "worker" ? "herdd" : "worker");
  return Status::FailedPrecondition(
      "protocol: " + who + " speaks task protocol " + std::to_string(theirs) + ", this " +
      (who == "worker" ? "herdd" : "worker") + " speaks " + std::to_string(kProtocolVersion) +
      "; run herdd and herd-worker of the same release (the " + newer + " is newer)");
}

json ToJson(const Message& m) { return {{"role", m.role}, {"content", m.content}}; }

json ToJson(const std::vector<Message>& ms) {
  json a = json::array();
  for (const auto& m : ms) a.push_back(ToJson(m));
  return a;
}

json ToJson(const Prompt& p) { return {{"id", p.id}, {"messages", ToJson(p.messages)}}; }

json ToJson(const std::vector<Prompt>& ps) {
  json a = json::array();
  for (const auto& p : ps) a.push_back(ToJson(p));
  return a;
}

json ToJson(const CheckpointInfo& c) {
  return {{"sha256", c.sha256}, {"size_bytes", c.size_bytes}, {"config_sha256", c.config_sha256}};
}

void Read(FieldReader& r, Message* m) {
  // The role is checked by the chat format that renders it.
  r.Str("role", &m->role, /*required=*/true);
  r.Str("content", &m->content, /*required=*/true);
}

void ReadMessages(FieldReader& r, const std::string& key, std::vector<Message>* out, bool required) {
  out->clear();
  r.Objects(key, [&](FieldReader& mr, size_t) {
    Message m;
    Read(mr, &m);
    out->push_back(std::move(m));
  }, required);
}

void ReadPrompts(FieldReader& r, const std::string& key, std::vector<Prompt>* out, bool required) {
  out->clear();
  r.Objects(key, [&](FieldReader& pr, size_t) {
    Prompt p;
    pr.Str("id", &p.id, /*required=*/true);
    ReadMessages(pr, "messages", &p.messages, /*required=*/true);
    if (pr.ok() && p.messages.empty()) pr.Fail(pr.Path("messages"), "must not be empty");
    out->push_back(std::move(p));
  }, required);
}

void Read(FieldReader& r, CheckpointInfo* c) {
  r.Str("sha256", &c->sha256);
  r.U64("size_bytes", &c->size_bytes);
  r.Str("config_sha256", &c->config_sha256);
}

json ToJson(const TextFormat& t) {
  return json{{"tokenizer", t.tokenizer}, {"chat_format", t.chat_format}};
}

void PutText(json* spec, const TextFormat& t) {
  if (!t.empty()) (*spec)["text"] = ToJson(t);
}

void ReadText(FieldReader& r, TextFormat* t) {
  r.Nested("text", [&](FieldReader& x) {
    x.Str("tokenizer", &t->tokenizer);
    x.Str("chat_format", &t->chat_format);
    if (x.ok() && !t->chat_format.empty() && t->chat_format != "llama3" &&
        t->chat_format != "chatml") {
      x.Fail(x.Path("chat_format"), "must be one of llama3, chatml, got '" + t->chat_format + "'");
    }
  });
}

std::string Encode(const Requirements& q) {
  return json{{"device", q.device}, {"min_memory_bytes", q.min_memory_bytes}}.dump();
}

Requirements DecodeRequirements(const std::string& text) {
  Requirements q;
  json j = json::parse(text.empty() ? "{}" : text, nullptr, false);
  if (j.is_object()) {
    q.device = j.value("device", q.device);
    q.min_memory_bytes = j.value("min_memory_bytes", q.min_memory_bytes);
  }
  return q;
}

}  // namespace herd::tasks
