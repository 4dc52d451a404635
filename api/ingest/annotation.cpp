#include "api/ingest/annotation.h"

#include <algorithm>

#include "common/sha256.h"
#include "api/wire/json_util.h"

namespace herd::ingest {
namespace {

using nlohmann::json;

Status FieldError(const std::string& field, const std::string& what) {
  return Status::InvalidArgument("field '" + field + "': " + what);
}

Status Mistyped(const std::string& field, const char* want, const json& got) {
  return FieldError(field, std::string("must be ") + want + ", got " + api::JsonTypeName(got));
}

const json* Find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Result<std::string> RequiredString(const json& obj, const char* key) {
  const json* v = Find(obj, key);
  if (v == nullptr) return FieldError(key, "missing");
  if (!v->is_string()) return Mistyped(key, "a string", *v);
  return v->get<std::string>();
}

// Absent → nullopt; present → a non-empty string.
Result<std::optional<std::string>> OptionalString(const json& obj, const char* key) {
  const json* v = Find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return Mistyped(key, "a string", *v);
  if (v->get_ref<const std::string&>().empty()) return FieldError(key, "must not be empty");
  return std::optional<std::string>(v->get<std::string>());
}

// Llama 3's roles; "tool" (the OpenAI name) is taken as "ipython".
std::optional<std::string> CanonicalRole(const std::string& r) {
  if (r == "system" || r == "user" || r == "assistant" || r == "ipython") return r;
  if (r == "tool") return std::string("ipython");
  return std::nullopt;
}

Result<std::vector<Message>> ParseMessages(const json& v, const std::string& field) {
  if (!v.is_array()) return Mistyped(field, "an array of messages", v);
  if (v.empty()) return FieldError(field, "must hold at least one message");
  std::vector<Message> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    const json& m = v[i];
    if (!m.is_object()) return Mistyped(f, "an object {\"role\", \"content\"}", m);
    const json* role = Find(m, "role");
    const json* content = Find(m, "content");
    if (role == nullptr) return FieldError(f + ".role", "missing");
    if (!role->is_string()) return Mistyped(f + ".role", "a string", *role);
    const std::optional<std::string> canonical = CanonicalRole(role->get<std::string>());
    if (!canonical) {
      return FieldError(f + ".role", "'" + role->get<std::string>() +
                                         "' is not one of system, user, assistant, ipython (or tool)");
    }
    if (content == nullptr) return FieldError(f + ".content", "missing");
    if (!content->is_string()) return Mistyped(f + ".content", "a string", *content);
    out.push_back({*canonical, content->get<std::string>()});
  }
  return out;
}

// "prompt": a string (one user turn) or a list of messages.
Result<std::vector<Message>> ParsePrompt(const json& obj) {
  const json* v = Find(obj, "prompt");
  if (v == nullptr) return FieldError("prompt", "missing");
  if (v->is_string()) {
    if (v->get_ref<const std::string&>().empty()) return FieldError("prompt", "must not be empty");
    return std::vector<Message>{{"user", v->get<std::string>()}};
  }
  if (v->is_array()) return ParseMessages(*v, "prompt");
  return Mistyped("prompt", "a string or an array of messages", *v);
}

Status ParseStrengthField(const json& obj, const IngestOptions& opts, Annotation& a) {
  const json* v = Find(obj, "strength");
  if (v == nullptr || v->is_null()) {
    a.strength = opts.default_strength;
    a.strength_defaulted = true;
    return Status::Ok();
  }
  if (!v->is_string()) return Mistyped("strength", "a string", *v);
  auto s = ParseStrength(v->get<std::string>());
  if (!s) {
    return FieldError("strength", "'" + v->get<std::string>() +
                                      "' is not one of significantly_better, better, "
                                      "slightly_better, marginally_better");
  }
  a.strength = *s;
  return Status::Ok();
}

Status ParseCommon(const json& obj, Annotation& a) {
  HERD_ASSIGN_OR_RETURN(auto id, OptionalString(obj, "id"));
  if (id) {
    a.id = std::move(*id);
    a.id_from_client = true;
  }
  HERD_ASSIGN_OR_RETURN(a.annotator, OptionalString(obj, "annotator"));
  return Status::Ok();
}

Status ParsePairwise(const json& obj, const IngestOptions& opts, Annotation& a) {
  a.format = AnnotationFormat::kPairwise;
  HERD_ASSIGN_OR_RETURN(a.prompt, ParsePrompt(obj));
  HERD_ASSIGN_OR_RETURN(std::string chosen, RequiredString(obj, "chosen"));
  HERD_ASSIGN_OR_RETURN(std::string rejected, RequiredString(obj, "rejected"));
  if (chosen == rejected) return FieldError("rejected", "identical to 'chosen'");
  HERD_ASSIGN_OR_RETURN(auto edited, OptionalString(obj, "edited"));
  if (edited) {
    if (*edited == chosen) return FieldError("edited", "identical to 'chosen' (not an edit)");
    if (*edited == rejected) return FieldError("edited", "identical to 'rejected'");
    a.edited = true;
    a.responses.push_back(std::move(*edited));
  }
  a.responses.push_back(std::move(chosen));
  a.responses.push_back(std::move(rejected));
  HERD_RETURN_IF_ERROR(ParseStrengthField(obj, opts, a));
  return ParseCommon(obj, a);
}

Status ParseRanked(const json& obj, const IngestOptions& opts, Annotation& a) {
  a.format = AnnotationFormat::kRanked;
  HERD_ASSIGN_OR_RETURN(a.prompt, ParsePrompt(obj));
  const json& responses = obj["responses"];
  if (!responses.is_array()) return Mistyped("responses", "an array of strings", responses);
  if (responses.size() < 2) return FieldError("responses", "needs at least 2 responses");
  for (size_t i = 0; i < responses.size(); ++i) {
    if (!responses[i].is_string()) {
      return Mistyped("responses[" + std::to_string(i) + "]", "a string", responses[i]);
    }
  }
  const json* ranking = Find(obj, "ranking");
  if (ranking == nullptr) return FieldError("ranking", "missing");
  if (!ranking->is_array()) return Mistyped("ranking", "an array of indices", *ranking);
  const size_t n = responses.size();
  if (ranking->size() != n) {
    return FieldError("ranking", "has " + std::to_string(ranking->size()) + " entries for " +
                                     std::to_string(n) + " responses");
  }
  std::vector<bool> seen(n, false);
  for (size_t i = 0; i < n; ++i) {
    const json& r = (*ranking)[i];
    const std::string f = "ranking[" + std::to_string(i) + "]";
    if (!r.is_number_integer()) return Mistyped(f, "an integer index", r);
    long long idx = r.get<long long>();
    if (idx < 0 || idx >= static_cast<long long>(n)) {
      return FieldError(f, std::to_string(idx) + " is out of range [0, " + std::to_string(n) + ")");
    }
    if (seen[idx]) {
      return FieldError("ranking", "is not a permutation: index " + std::to_string(idx) +
                                       " appears twice");
    }
    seen[idx] = true;
    a.responses.push_back(responses[idx].get<std::string>());
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (responses[i] == responses[j]) {
        return FieldError("responses", "responses " + std::to_string(i) + " and " +
                                           std::to_string(j) + " are identical");
      }
    }
  }
  HERD_RETURN_IF_ERROR(ParseStrengthField(obj, opts, a));
  return ParseCommon(obj, a);
}

Status ParseHh(const json& obj, const IngestOptions& opts, Annotation& a) {
  a.format = AnnotationFormat::kHhRlhf;
  HERD_ASSIGN_OR_RETURN(std::string chosen, RequiredString(obj, "chosen"));
  HERD_ASSIGN_OR_RETURN(std::string rejected, RequiredString(obj, "rejected"));
  HERD_ASSIGN_OR_RETURN(auto c, ParseHhTranscript(chosen, "chosen"));
  HERD_ASSIGN_OR_RETURN(auto r, ParseHhTranscript(rejected, "rejected"));
  if (c.back().role != "assistant") return FieldError("chosen", "must end with an Assistant turn");
  if (r.back().role != "assistant") {
    return FieldError("rejected", "must end with an Assistant turn");
  }
  if (c.size() != r.size() || !std::equal(c.begin(), c.end() - 1, r.begin())) {
    return FieldError("rejected", "the dialogue before the last Assistant turn differs from "
                                  "'chosen'");
  }
  if (c.back().content == r.back().content) {
    return FieldError("rejected", "last Assistant turn identical to 'chosen'");
  }
  a.responses = {c.back().content, r.back().content};
  c.pop_back();
  a.prompt = std::move(c);
  HERD_RETURN_IF_ERROR(ParseStrengthField(obj, opts, a));
  return ParseCommon(obj, a);
}

// The final assistant message of an UltraFeedback conversation.
Result<std::vector<Message>> ParseUfConversation(const json& v, const char* field) {
  HERD_ASSIGN_OR_RETURN(auto msgs, ParseMessages(v, field));
  if (msgs.back().role != "assistant") {
    return FieldError(std::string(field) + "[" + std::to_string(msgs.size() - 1) + "].role",
                      "the last message must be the assistant's response");
  }
  return msgs;
}

Result<std::optional<double>> OptionalNumber(const json& obj, const char* key) {
  const json* v = Find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<double>();
  if (!v->is_number()) return Mistyped(key, "a number", *v);
  return std::optional<double>(v->get<double>());
}

Status ParseUltraFeedback(const json& obj, const IngestOptions& opts, Annotation& a) {
  a.format = AnnotationFormat::kUltraFeedback;
  HERD_ASSIGN_OR_RETURN(std::string prompt, RequiredString(obj, "prompt"));
  if (prompt.empty()) return FieldError("prompt", "must not be empty");
  const json* rej = Find(obj, "rejected");
  if (rej == nullptr) return FieldError("rejected", "missing");
  HERD_ASSIGN_OR_RETURN(auto c, ParseUfConversation(obj["chosen"], "chosen"));
  HERD_ASSIGN_OR_RETURN(auto r, ParseUfConversation(*rej, "rejected"));
  if (c.back().content == r.back().content) {
    return FieldError("rejected", "response identical to 'chosen'");
  }
  a.responses = {c.back().content, r.back().content};
  c.pop_back();
  // The conversation before the response is the prompt; conversations of a
  // single assistant message fall back to "prompt" as one user turn.
  a.prompt = c.empty() ? std::vector<Message>{{"user", prompt}} : std::move(c);
  HERD_ASSIGN_OR_RETURN(a.score_chosen, OptionalNumber(obj, "score_chosen"));
  HERD_ASSIGN_OR_RETURN(a.score_rejected, OptionalNumber(obj, "score_rejected"));
  HERD_RETURN_IF_ERROR(ParseStrengthField(obj, opts, a));
  return ParseCommon(obj, a);
}

std::string ContentHashId(const std::vector<Message>& prompt,
                          const std::vector<std::string>& responses) {
  json p = json::array();
  for (const auto& m : prompt) p.push_back(json::array({m.role, m.content}));
  json j = {{"prompt", std::move(p)}, {"responses", responses}};
  return "sha256:" + Sha256Hex(api::DumpJson(j));
}

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

const char* StrengthName(Strength s) {
  switch (s) {
    case Strength::kSignificantlyBetter: return "significantly_better";
    case Strength::kBetter: return "better";
    case Strength::kSlightlyBetter: return "slightly_better";
    case Strength::kMarginallyBetter: return "marginally_better";
  }
  return "better";
}

std::optional<Strength> ParseStrength(std::string_view s) {
  for (Strength v : {Strength::kSignificantlyBetter, Strength::kBetter, Strength::kSlightlyBetter,
                     Strength::kMarginallyBetter}) {
    if (s == StrengthName(v)) return v;
  }
  return std::nullopt;
}

const char* FormatName(AnnotationFormat f) {
  switch (f) {
    case AnnotationFormat::kPairwise: return "pairwise";
    case AnnotationFormat::kRanked: return "ranked";
    case AnnotationFormat::kHhRlhf: return "hh_rlhf";
    case AnnotationFormat::kUltraFeedback: return "ultrafeedback";
  }
  return "pairwise";
}

Result<std::vector<Message>> ParseHhTranscript(std::string_view text, const std::string& field) {
  static constexpr std::string_view kHuman = "\n\nHuman:";
  static constexpr std::string_view kAssistant = "\n\nAssistant:";
  // Some dumps drop the leading blank line of the first turn.
  std::string buf;
  if (text.substr(0, 6) == "Human:") {
    buf = "\n\n" + std::string(text);
    text = buf;
  }
  if (text.substr(0, kHuman.size()) != kHuman) {
    return FieldError(field, "an HH-RLHF transcript must start with \"\\n\\nHuman:\"");
  }
  std::vector<Message> turns;
  size_t pos = 0;
  while (pos < text.size()) {
    bool human = text.substr(pos, kHuman.size()) == kHuman;
    size_t start = pos + (human ? kHuman.size() : kAssistant.size());
    size_t next_h = text.find(kHuman, start);
    size_t next_a = text.find(kAssistant, start);
    size_t end = std::min(next_h, next_a);
    std::string_view content = text.substr(start, end == std::string_view::npos ? end : end - start);
    if (!content.empty() && content.front() == ' ') content.remove_prefix(1);
    while (!content.empty() && (content.back() == ' ' || content.back() == '\n')) {
      content.remove_suffix(1);
    }
    turns.push_back({human ? "user" : "assistant", std::string(content)});
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return turns;
}

Result<Annotation> ParseAnnotationLine(std::string_view line, uint64_t line_no,
                                       const IngestOptions& opts) {
  auto parsed = api::ParseJson(line);
  if (!parsed.ok()) return parsed.status();
  const json& obj = *parsed;
  if (!obj.is_object()) return Status::InvalidArgument("a line must be a JSON object, got " +
                                                       api::JsonTypeName(obj));
  Annotation a;
  a.line = line_no;
  Status st;
  if (Find(obj, "responses") != nullptr) {
    st = ParseRanked(obj, opts, a);
  } else {
    const json* chosen = Find(obj, "chosen");
    if (chosen == nullptr) {
      return Status::InvalidArgument(
          "field 'chosen' missing (a record needs 'chosen' and 'rejected', or 'responses' and "
          "'ranking')");
    }
    if (chosen->is_array()) {
      st = ParseUltraFeedback(obj, opts, a);
    } else if (!chosen->is_string()) {
      return Mistyped("chosen", "a string or an array of messages", *chosen);
    } else if (Find(obj, "prompt") != nullptr) {
      st = ParsePairwise(obj, opts, a);
    } else {
      st = ParseHh(obj, opts, a);
    }
  }
  if (!st.ok()) return st;
  if (!a.id_from_client) a.id = ContentHashId(a.prompt, a.responses);
  a.raw = std::string(line);
  return a;
}

AnnotationReader::AnnotationReader(IngestOptions opts, RecordFn on_record, ErrorFn on_error)
    : opts_(opts),
      splitter_(opts.max_line_bytes),
      on_record_(std::move(on_record)),
      on_error_(std::move(on_error)) {}

void AnnotationReader::OnLine(const Line& l) {
  if (l.oversize) {
    ++rejected_;
    on_error_({l.number, "line longer than " + std::to_string(opts_.max_line_bytes) + " bytes"});
    return;
  }
  if (IsBlank(l.text)) return;
  auto a = ParseAnnotationLine(l.text, l.number, opts_);
  if (!a.ok()) {
    ++rejected_;
    on_error_({l.number, a.status().message()});
    return;
  }
  ++accepted_;
  on_record_(std::move(a).value());
}

void AnnotationReader::Feed(std::string_view chunk) {
  splitter_.Feed(chunk, [this](const Line& l) { OnLine(l); });
}

void AnnotationReader::Finish() {
  splitter_.Finish([this](const Line& l) { OnLine(l); });
}

Result<PromptRecord> ParsePromptLine(std::string_view line, uint64_t line_no) {
  auto parsed = api::ParseJson(line);
  if (!parsed.ok()) return parsed.status();
  const json& obj = *parsed;
  if (!obj.is_object()) {
    return Status::InvalidArgument("a line must be a JSON object, got " + api::JsonTypeName(obj));
  }
  PromptRecord p;
  p.line = line_no;
  HERD_ASSIGN_OR_RETURN(p.messages, ParsePrompt(obj));
  HERD_ASSIGN_OR_RETURN(auto split, OptionalString(obj, "split"));
  if (split) {
    if (*split == "train") {
      p.split = Split::kTrain;
    } else if (*split == "eval") {
      p.split = Split::kEval;
    } else {
      return FieldError("split", "'" + *split + "' is not one of train, eval");
    }
  }
  HERD_ASSIGN_OR_RETURN(auto id, OptionalString(obj, "id"));
  if (id) {
    p.id = std::move(*id);
    p.id_from_client = true;
  } else {
    p.id = ContentHashId(p.messages, {});
  }
  return p;
}

PromptReader::PromptReader(RecordFn on_record, ErrorFn on_error, size_t max_line_bytes)
    : splitter_(max_line_bytes),
      max_(max_line_bytes),
      on_record_(std::move(on_record)),
      on_error_(std::move(on_error)) {}

void PromptReader::OnLine(const Line& l) {
  if (l.oversize) {
    on_error_({l.number, "line longer than " + std::to_string(max_) + " bytes"});
    return;
  }
  if (IsBlank(l.text)) return;
  auto p = ParsePromptLine(l.text, l.number);
  if (!p.ok()) {
    on_error_({l.number, p.status().message()});
    return;
  }
  on_record_(std::move(p).value());
}

void PromptReader::Feed(std::string_view chunk) {
  splitter_.Feed(chunk, [this](const Line& l) { OnLine(l); });
}

void PromptReader::Finish() {
  splitter_.Finish([this](const Line& l) { OnLine(l); });
}

}  // namespace herd::ingest
