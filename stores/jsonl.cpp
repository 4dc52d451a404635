#include "stores/jsonl.h"

#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "stores/store.h"

namespace herd::stores {

using nlohmann::json;

namespace {

json Messages(const std::vector<Message>& ms) {
  json a = json::array();
  for (const auto& m : ms) a.push_back({{"role", m.role}, {"content", m.content}});
  return a;
}

json SampleJson(const Sample& s) {
  json j = {{"run_id", s.run_id},
            {"round", s.round},
            {"prompt_id", s.prompt_id},
            {"idx", s.idx},
            {"tokens", s.tokens},
            {"text", s.text},
            {"logprob", s.logprob},
            {"policy_checkpoint_id", s.policy_checkpoint_id},
            {"rm_checkpoint_id", s.rm_checkpoint_id},
            {"temperature", s.temperature},
            {"seed", s.seed},
            {"selected", s.selected},
            {"task_id", s.task_id},
            {"created_ms", s.created_ms}};
  j["rm_score"] = s.rm_score ? json(*s.rm_score) : json(nullptr);
  return j;
}

json PairJson(const Pair& p) {
  json j = {{"run_id", p.run_id},       {"round", p.round},         {"id", p.id},
            {"prompt", Messages(p.prompt)}, {"chosen", p.chosen},   {"rejected", p.rejected},
            {"strength", p.strength},   {"source", p.source},       {"annotation_id", p.annotation_id},
            {"annotator", p.annotator}, {"created_ms", p.created_ms}};
  if (p.edited) j["edited"] = *p.edited;
  return j;
}

json PromptJson(const Prompt& p) {
  return {{"run_id", p.run_id}, {"id", p.id},         {"messages", Messages(p.messages)},
          {"split", p.split},   {"source", p.source}, {"created_ms", p.created_ms}};
}

json AnnotationJson(const Annotation& a) {
  json j = {{"run_id", a.run_id},
            {"id", a.id},
            {"raw", a.raw},
            {"format", a.format},
            {"prompt", Messages(a.prompt)},
            {"responses", a.responses},
            {"strength", a.strength},
            {"annotator", a.annotator},
            {"request_id", a.request_id},
            {"round", a.round},
            {"source_file", a.source_file},
            {"source_line", a.source_line},
            {"received_ms", a.received_ms}};
  if (a.edited) j["edited"] = *a.edited;
  return j;
}

// Writes j + '\n'; invalid UTF-8 in stored text is replaced, never thrown.
void WriteLine(const json& j, std::ostream& out, ExportStats* st, std::string* buf) {
  *buf = j.dump(-1, ' ', false, json::error_handler_t::replace);
  buf->push_back('\n');
  out.write(buf->data(), std::streamsize(buf->size()));
  st->lines++;
  st->bytes += buf->size();
}

Status StreamStatus(std::ostream& out) {
  return out ? Status::Ok() : Status::IoError("export stream write failed");
}

// ---- typed field readers for import: errors name the line and field --------

struct LineReader {
  const json& j;
  uint64_t line;
  Status err;

  bool Fail(const std::string& field, const std::string& what) {
    if (err.ok()) err = Status::InvalidArgument("line " + std::to_string(line) + ": field '" + field + "' " + what);
    return false;
  }
  const json* Find(const char* f, bool required) {
    auto it = j.find(f);
    if (it == j.end() || (it->is_null() && !required)) {
      if (required) Fail(f, "is missing");
      return nullptr;
    }
    return &*it;
  }
  void Str(const char* f, std::string* out, bool required = false) {
    if (const json* v = Find(f, required)) {
      if (!v->is_string()) {
        Fail(f, "must be a string");
        return;
      }
      *out = v->get<std::string>();
    }
  }
  void OptStr(const char* f, std::optional<std::string>* out) {
    if (const json* v = Find(f, false)) {
      if (!v->is_string()) {
        Fail(f, "must be a string");
        return;
      }
      *out = v->get<std::string>();
    }
  }
  template <typename U>
  void UInt(const char* f, U* out, bool required = false) {
    if (const json* v = Find(f, required)) {
      if (!v->is_number_unsigned() || v->get<uint64_t>() > uint64_t(std::numeric_limits<U>::max())) {
        Fail(f, "must be a non-negative integer in range");
        return;
      }
      *out = U(v->get<uint64_t>());
    }
  }
  void Int64(const char* f, int64_t* out) {
    if (const json* v = Find(f, false)) {
      if (!v->is_number_integer()) {
        Fail(f, "must be an integer");
        return;
      }
      *out = v->get<int64_t>();
    }
  }
  void Num(const char* f, double* out) {
    if (const json* v = Find(f, false)) {
      if (!v->is_number()) {
        Fail(f, "must be a number");
        return;
      }
      *out = v->get<double>();
    }
  }
  void Bool(const char* f, bool* out) {
    if (const json* v = Find(f, false)) {
      if (!v->is_boolean()) {
        Fail(f, "must be a boolean");
        return;
      }
      *out = v->get<bool>();
    }
  }
  void Msgs(const char* f, std::vector<Message>* out, bool required = false) {
    const json* v = Find(f, required);
    if (!v) return;
    if (!v->is_array()) {
      Fail(f, "must be an array of {role, content}");
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const json& m = (*v)[i];
      auto r = m.is_object() ? m.find("role") : m.end();
      auto c = m.is_object() ? m.find("content") : m.end();
      if (!m.is_object() || r == m.end() || c == m.end() || !r->is_string() || !c->is_string()) {
        Fail(std::string(f) + "[" + std::to_string(i) + "]", "must be {\"role\": string, \"content\": string}");
        return;
      }
      out->push_back({r->get<std::string>(), c->get<std::string>()});
    }
  }
  void StrList(const char* f, std::vector<std::string>* out) {
    const json* v = Find(f, false);
    if (!v) return;
    if (!v->is_array()) {
      Fail(f, "must be an array of strings");
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        Fail(std::string(f) + "[" + std::to_string(i) + "]", "must be a string");
        return;
      }
      out->push_back((*v)[i].get<std::string>());
    }
  }
  void Tokens(const char* f, std::vector<int32_t>* out) {
    const json* v = Find(f, false);
    if (!v) return;
    if (!v->is_array()) {
      Fail(f, "must be an array of int32");
      return;
    }
    out->reserve(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      const json& t = (*v)[i];
      if (!t.is_number_integer() || t.get<int64_t>() < INT32_MIN || t.get<int64_t>() > INT32_MAX) {
        Fail(std::string(f) + "[" + std::to_string(i) + "]", "must be an int32");
        return;
      }
      out->push_back(int32_t(t.get<int64_t>()));
    }
  }
};

// Shared import loop: read line, parse, convert with `fill`, batch, commit.
template <typename Fill>
Status ImportLoop(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats, Fill fill) {
  ImportStats local;
  if (!stats) stats = &local;
  WriteTxn txn = store.NewTxn();
  uint64_t pending = 0, line_no = 0;
  std::string line;
  const uint32_t batch = opt.batch_records == 0 ? 1000 : opt.batch_records;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.size() > opt.max_line_bytes) {
      return Status::InvalidArgument("line " + std::to_string(line_no) + ": longer than " +
                                     std::to_string(opt.max_line_bytes) + " bytes");
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::InvalidArgument("line " + std::to_string(line_no) + ": not a JSON object");
    }
    LineReader r{j, line_no, Status::Ok()};
    fill(r, txn);
    if (!r.err.ok()) return r.err;
    HERD_RETURN_IF_ERROR(txn.status().WithContext("line " + std::to_string(line_no)));
    if (++pending == batch) {
      HERD_RETURN_IF_ERROR(store.Commit(txn, Durability::kSync));
      stats->records += pending;
      pending = 0;
      txn.Clear();
    }
  }
  if (in.bad()) return Status::IoError("import stream read failed after line " + std::to_string(line_no));
  if (pending) {
    HERD_RETURN_IF_ERROR(store.Commit(txn, Durability::kSync));
    stats->records += pending;
  }
  return Status::Ok();
}

void RunId(LineReader& r, const ImportOptions& opt, std::string* out) {
  if (!opt.run_id.empty()) {
    *out = opt.run_id;
  } else {
    r.Str("run_id", out, true);
  }
}

}  // namespace

std::string ToJson(const Sample& s) { return SampleJson(s).dump(-1, ' ', false, json::error_handler_t::replace); }
std::string ToJson(const Pair& p) { return PairJson(p).dump(-1, ' ', false, json::error_handler_t::replace); }
std::string ToJson(const Prompt& p) { return PromptJson(p).dump(-1, ' ', false, json::error_handler_t::replace); }
std::string ToJson(const Annotation& a) {
  return AnnotationJson(a).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ExportStats> ExportSamplesJsonl(Store& store, const std::string& run, std::optional<uint32_t> round,
                                       std::ostream& out) {
  ExportStats st;
  std::string buf;
  HERD_RETURN_IF_ERROR(store.ForEachSample(run, round, [&](const Sample& s) {
    WriteLine(SampleJson(s), out, &st, &buf);
    return bool(out);
  }));
  HERD_RETURN_IF_ERROR(StreamStatus(out));
  return st;
}

Result<ExportStats> ExportPairsJsonl(Store& store, const std::string& run, std::optional<uint32_t> round,
                                     std::ostream& out) {
  ExportStats st;
  std::string buf;
  HERD_RETURN_IF_ERROR(store.ForEachPair(run, round, [&](const Pair& p) {
    WriteLine(PairJson(p), out, &st, &buf);
    return bool(out);
  }));
  HERD_RETURN_IF_ERROR(StreamStatus(out));
  return st;
}

Result<ExportStats> ExportSftSetJsonl(Store& store, const std::string& run, uint32_t round, std::ostream& out) {
  ExportStats st;
  std::string buf;
  Status err;
  HERD_RETURN_IF_ERROR(store.ForEachSftSample(run, round, [&](const Sample& s) {
    auto p = store.GetPrompt(run, s.prompt_id);
    if (!p.ok()) {
      err = p.status().WithContext("SFT export of round " + std::to_string(round));
      return false;
    }
    json msgs = Messages(p->messages);
    msgs.push_back({{"role", "assistant"}, {"content", s.text}});
    json j = {{"prompt_id", s.prompt_id},
              {"round", s.round},
              {"idx", s.idx},
              {"messages", std::move(msgs)},
              {"policy_checkpoint_id", s.policy_checkpoint_id}};
    j["rm_score"] = s.rm_score ? json(*s.rm_score) : json(nullptr);
    WriteLine(j, out, &st, &buf);
    return bool(out);
  }));
  HERD_RETURN_IF_ERROR(err);
  HERD_RETURN_IF_ERROR(StreamStatus(out));
  return st;
}

Result<ExportStats> ExportPromptsJsonl(Store& store, const std::string& run, std::ostream& out) {
  ExportStats st;
  std::string buf;
  HERD_RETURN_IF_ERROR(store.ForEachPrompt(run, [&](const Prompt& p) {
    WriteLine(PromptJson(p), out, &st, &buf);
    return bool(out);
  }));
  HERD_RETURN_IF_ERROR(StreamStatus(out));
  return st;
}

Result<ExportStats> ExportAnnotationsJsonl(Store& store, const std::string& run, std::ostream& out) {
  ExportStats st;
  std::string buf;
  HERD_RETURN_IF_ERROR(store.ForEachAnnotation(run, [&](const Annotation& a) {
    WriteLine(AnnotationJson(a), out, &st, &buf);
    return bool(out);
  }));
  HERD_RETURN_IF_ERROR(StreamStatus(out));
  return st;
}

Status ImportSamplesJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats) {
  return ImportLoop(store, in, opt, stats, [&](LineReader& r, WriteTxn& txn) {
    Sample s;
    RunId(r, opt, &s.run_id);
    r.UInt("round", &s.round);
    r.Str("prompt_id", &s.prompt_id, true);
    r.UInt("idx", &s.idx, true);
    r.Tokens("tokens", &s.tokens);
    r.Str("text", &s.text);
    r.Num("logprob", &s.logprob);
    double score = 0;
    if (r.Find("rm_score", false)) {
      r.Num("rm_score", &score);
      s.rm_score = score;
    }
    r.Str("policy_checkpoint_id", &s.policy_checkpoint_id);
    r.Str("rm_checkpoint_id", &s.rm_checkpoint_id);
    double temp = s.temperature;
    r.Num("temperature", &temp);
    s.temperature = float(temp);
    r.UInt("seed", &s.seed);
    r.Bool("selected", &s.selected);
    r.Str("task_id", &s.task_id);
    r.Int64("created_ms", &s.created_ms);
    if (r.err.ok()) txn.PutSample(s);
  });
}

Status ImportPairsJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats) {
  return ImportLoop(store, in, opt, stats, [&](LineReader& r, WriteTxn& txn) {
    Pair p;
    RunId(r, opt, &p.run_id);
    r.UInt("round", &p.round);
    r.Str("id", &p.id, true);
    r.Msgs("prompt", &p.prompt, true);
    r.Str("chosen", &p.chosen, true);
    r.Str("rejected", &p.rejected, true);
    r.Str("strength", &p.strength);
    r.OptStr("edited", &p.edited);
    r.Str("source", &p.source);
    r.Str("annotation_id", &p.annotation_id);
    r.Str("annotator", &p.annotator);
    r.Int64("created_ms", &p.created_ms);
    if (r.err.ok()) txn.PutPair(p);
  });
}

Status ImportPromptsJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats) {
  return ImportLoop(store, in, opt, stats, [&](LineReader& r, WriteTxn& txn) {
    Prompt p;
    RunId(r, opt, &p.run_id);
    r.Str("id", &p.id, true);
    r.Msgs("messages", &p.messages, true);
    r.Str("split", &p.split);
    r.Str("source", &p.source);
    r.Int64("created_ms", &p.created_ms);
    if (r.err.ok()) txn.PutPrompt(p);
  });
}

Status ImportAnnotationsJsonl(Store& store, std::istream& in, const ImportOptions& opt, ImportStats* stats) {
  return ImportLoop(store, in, opt, stats, [&](LineReader& r, WriteTxn& txn) {
    Annotation a;
    RunId(r, opt, &a.run_id);
    r.Str("id", &a.id, true);
    r.Str("raw", &a.raw);
    r.Str("format", &a.format);
    r.Msgs("prompt", &a.prompt);
    r.StrList("responses", &a.responses);
    r.Str("strength", &a.strength);
    r.OptStr("edited", &a.edited);
    r.Str("annotator", &a.annotator);
    r.Str("request_id", &a.request_id);
    r.UInt("round", &a.round);
    r.Str("source_file", &a.source_file);
    r.UInt("source_line", &a.source_line);
    r.Int64("received_ms", &a.received_ms);
    if (r.err.ok()) txn.PutAnnotation(a);
  });
}

}  // namespace herd::stores
