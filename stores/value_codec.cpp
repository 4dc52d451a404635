#include "stores/value_codec.h"

#include <cstring>

#include "stores/keys.h"

namespace herd::stores {

// ---- framing ---------------------------------------------------------------

void FieldWriter::RawVarint(uint64_t v) {
  char b[10];
  int n = 0;
  while (v >= 0x80) {
    b[n++] = char(v | 0x80);
    v >>= 7;
  }
  b[n++] = char(v);
  out_->append(b, size_t(n));
}
void FieldWriter::Varint(uint32_t field, uint64_t v) {
  RawVarint(uint64_t(field) << 3 | 0);
  RawVarint(v);
}
void FieldWriter::Double(uint32_t field, double v) {
  RawVarint(uint64_t(field) << 3 | 1);
  uint64_t u;
  std::memcpy(&u, &v, 8);
  PutU64LE(out_, u);
}
void FieldWriter::BytesHeader(uint32_t field, size_t len) {
  RawVarint(uint64_t(field) << 3 | 2);
  RawVarint(len);
}
void FieldWriter::Bytes(uint32_t field, std::string_view v) {
  RawVarint(uint64_t(field) << 3 | 2);
  RawVarint(v.size());
  out_->append(v);
}

bool FieldReader::ReadVarint(uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p_.empty()) return false;
    uint8_t b = uint8_t(p_[0]);
    p_.remove_prefix(1);
    r |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

bool FieldReader::Next() {
  if (!ok_ || p_.empty()) return false;
  uint64_t tag;
  if (!ReadVarint(&tag)) {
    Fail("truncated field tag");
    return false;
  }
  field_ = uint32_t(tag >> 3);
  wire_ = uint32_t(tag & 7);
  switch (wire_) {
    case 0:
      if (!ReadVarint(&varint_)) {
        Fail("truncated varint in field " + std::to_string(field_));
        return false;
      }
      return true;
    case 1: {
      if (p_.size() < 8) {
        Fail("truncated fixed64 in field " + std::to_string(field_));
        return false;
      }
      uint64_t u = GetU64LE(p_.data());
      std::memcpy(&double_, &u, 8);
      p_.remove_prefix(8);
      return true;
    }
    case 2: {
      uint64_t n;
      if (!ReadVarint(&n) || n > p_.size()) {
        Fail("truncated bytes in field " + std::to_string(field_));
        return false;
      }
      bytes_ = p_.substr(0, size_t(n));
      p_.remove_prefix(size_t(n));
      return true;
    }
    default:
      Fail("unknown wire type " + std::to_string(wire_) + " in field " + std::to_string(field_));
      return false;
  }
}

uint64_t FieldReader::AsVarint() {
  if (wire_ != 0) Fail("field " + std::to_string(field_) + " is not a varint");
  return varint_;
}
double FieldReader::AsDouble() {
  if (wire_ != 1) Fail("field " + std::to_string(field_) + " is not a double");
  return double_;
}
std::string_view FieldReader::AsBytes() {
  if (wire_ != 2) {
    Fail("field " + std::to_string(field_) + " is not bytes");
    return {};
  }
  return bytes_;
}

void BeginValue(std::string* out) {
  out->clear();
  out->push_back(char(kValueVersion));
}
void SealValue(std::string* out) {
  uint32_t c = Crc32c(out->data(), out->size());
  char b[4] = {char(c), char(c >> 8), char(c >> 16), char(c >> 24)};
  out->append(b, 4);
}
Status OpenValue(std::string_view v, std::string_view* fields) {
  if (v.size() < 5) return Status::DataLoss("value too short (" + std::to_string(v.size()) + " bytes)");
  const auto* u = reinterpret_cast<const uint8_t*>(v.data() + v.size() - 4);
  uint32_t want = uint32_t(u[0]) | (uint32_t(u[1]) << 8) | (uint32_t(u[2]) << 16) | (uint32_t(u[3]) << 24);
  uint32_t got = Crc32c(v.data(), v.size() - 4);
  if (want != got) return Status::DataLoss("value checksum mismatch");
  if (uint8_t(v[0]) != kValueVersion) {
    return Status::DataLoss("unknown value version " + std::to_string(uint8_t(v[0])) + " (this build reads " +
                            std::to_string(kValueVersion) + ")");
  }
  *fields = v.substr(1, v.size() - 5);
  return Status::Ok();
}

namespace {

Status Done(const FieldReader& rd, const char* what) {
  if (rd.ok()) return Status::Ok();
  return Status::DataLoss(std::string("malformed ") + what + " value: " + rd.error());
}

void PutMessages(FieldWriter& w, uint32_t field, const std::vector<Message>& ms) {
  std::string tmp;
  for (const auto& m : ms) {
    tmp.clear();
    FieldWriter n(&tmp);
    n.BytesIfAny(1, m.role);
    n.BytesIfAny(2, m.content);
    w.Bytes(field, tmp);
  }
}
void GetMessage(FieldReader& outer, std::vector<Message>* ms) {
  std::string_view b = outer.AsBytes();
  FieldReader rd(b);
  Message m;
  while (rd.Next()) {
    if (rd.field() == 1) m.role = rd.AsBytes();
    if (rd.field() == 2) m.content = rd.AsBytes();
  }
  if (!rd.ok()) outer.Fail("message: " + rd.error());
  ms->push_back(std::move(m));
}

void PutDoubles(FieldWriter& w, uint32_t field, const std::vector<double>& v) {
  if (v.empty()) return;
  std::string tmp;
  for (double d : v) {
    uint64_t u;
    std::memcpy(&u, &d, 8);
    PutU64LE(&tmp, u);
  }
  w.Bytes(field, tmp);
}
void GetDoubles(FieldReader& rd, std::vector<double>* v) {
  std::string_view b = rd.AsBytes();
  if (b.size() % 8 != 0) return rd.Fail("packed doubles length not a multiple of 8");
  v->resize(b.size() / 8);
  for (size_t i = 0; i < v->size(); ++i) {
    uint64_t u = GetU64LE(b.data() + 8 * i);
    std::memcpy(&(*v)[i], &u, 8);
  }
}

void PutStage(FieldWriter& w, uint32_t field, const StageStatus& s) {
  std::string tmp;
  FieldWriter n(&tmp);
  n.BytesIfAny(1, s.stage);
  n.BytesIfAny(2, s.state);
  n.VarintIfAny(3, s.attempt);
  n.VarintIfAny(4, s.tasks_total);
  n.VarintIfAny(5, s.tasks_done);
  n.BytesIfAny(6, s.checkpoint_id);
  n.BytesIfAny(7, s.metrics_json);
  n.BytesIfAny(8, s.error);
  n.SignedIfAny(9, s.started_ms);
  n.SignedIfAny(10, s.finished_ms);
  w.Bytes(field, tmp);
}
void GetStage(FieldReader& outer, std::vector<StageStatus>* v) {
  FieldReader rd(outer.AsBytes());
  StageStatus s;
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: s.stage = rd.AsBytes(); break;
      case 2: s.state = rd.AsBytes(); break;
      case 3: s.attempt = uint32_t(rd.AsVarint()); break;
      case 4: s.tasks_total = rd.AsVarint(); break;
      case 5: s.tasks_done = rd.AsVarint(); break;
      case 6: s.checkpoint_id = rd.AsBytes(); break;
      case 7: s.metrics_json = rd.AsBytes(); break;
      case 8: s.error = rd.AsBytes(); break;
      case 9: s.started_ms = rd.AsSigned(); break;
      case 10: s.finished_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  if (!rd.ok()) outer.Fail("stage: " + rd.error());
  v->push_back(std::move(s));
}

}  // namespace

void PackTokens(const std::vector<int32_t>& t, std::string* out) {
  size_t base = out->size();
  out->resize(base + 4 * t.size());
  char* p = out->data() + base;
  for (int32_t v : t) {
    uint32_t u = uint32_t(v);
    p[0] = char(u);
    p[1] = char(u >> 8);
    p[2] = char(u >> 16);
    p[3] = char(u >> 24);
    p += 4;
  }
}
bool UnpackTokens(std::string_view b, std::vector<int32_t>* t) {
  if (b.size() % 4 != 0) return false;
  t->resize(b.size() / 4);
  const auto* u = reinterpret_cast<const uint8_t*>(b.data());
  for (size_t i = 0; i < t->size(); ++i, u += 4) {
    (*t)[i] = int32_t(uint32_t(u[0]) | (uint32_t(u[1]) << 8) | (uint32_t(u[2]) << 16) | (uint32_t(u[3]) << 24));
  }
  return true;
}

// ---- records ---------------------------------------------------------------
// Field numbers are persisted: never reuse or renumber (docs/store.md).

void Encode(const Run& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.id);
  w.BytesIfAny(2, r.name);
  w.BytesIfAny(3, r.config_json);
  w.BytesIfAny(4, r.state);
  w.VarintIfAny(5, r.current_round);
  w.BytesIfAny(6, r.current_stage);
  w.BytesIfAny(7, r.error);
  w.SignedIfAny(8, r.created_ms);
  w.SignedIfAny(9, r.updated_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Run* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Run{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->id = rd.AsBytes(); break;
      case 2: r->name = rd.AsBytes(); break;
      case 3: r->config_json = rd.AsBytes(); break;
      case 4: r->state = rd.AsBytes(); break;
      case 5: r->current_round = uint32_t(rd.AsVarint()); break;
      case 6: r->current_stage = rd.AsBytes(); break;
      case 7: r->error = rd.AsBytes(); break;
      case 8: r->created_ms = rd.AsSigned(); break;
      case 9: r->updated_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "run");
}

void Encode(const Round& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.VarintIfAny(2, r.round);
  w.BytesIfAny(3, r.state);
  for (const auto& s : r.stages) PutStage(w, 4, s);
  w.BytesIfAny(5, r.metrics_json);
  w.SignedIfAny(6, r.created_ms);
  w.SignedIfAny(7, r.updated_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Round* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Round{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->round = uint32_t(rd.AsVarint()); break;
      case 3: r->state = rd.AsBytes(); break;
      case 4: GetStage(rd, &r->stages); break;
      case 5: r->metrics_json = rd.AsBytes(); break;
      case 6: r->created_ms = rd.AsSigned(); break;
      case 7: r->updated_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "round");
}

void Encode(const Task& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.id);
  w.BytesIfAny(2, r.run_id);
  w.VarintIfAny(3, r.round);
  w.BytesIfAny(4, r.stage);
  w.BytesIfAny(5, r.kind);
  w.BytesIfAny(6, r.spec_json);
  w.BytesIfAny(7, r.requirements_json);
  w.SignedIfAny(8, r.priority);
  w.VarintIfAny(9, r.queue_seq);
  w.Varint(10, uint64_t(r.state));
  w.VarintIfAny(11, r.attempt);
  w.Varint(12, r.max_attempts);
  w.SignedIfAny(13, r.not_before_ms);
  w.BytesIfAny(14, r.lease_id);
  w.BytesIfAny(15, r.worker_id);
  w.SignedIfAny(16, r.lease_expires_ms);
  w.BytesIfAny(17, r.progress_json);
  w.BytesIfAny(18, r.result_json);
  w.BytesIfAny(19, r.error);
  w.SignedIfAny(20, r.created_ms);
  w.SignedIfAny(21, r.updated_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Task* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Task{};
  r->max_attempts = 0;
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->id = rd.AsBytes(); break;
      case 2: r->run_id = rd.AsBytes(); break;
      case 3: r->round = uint32_t(rd.AsVarint()); break;
      case 4: r->stage = rd.AsBytes(); break;
      case 5: r->kind = rd.AsBytes(); break;
      case 6: r->spec_json = rd.AsBytes(); break;
      case 7: r->requirements_json = rd.AsBytes(); break;
      case 8: r->priority = int32_t(rd.AsSigned()); break;
      case 9: r->queue_seq = rd.AsVarint(); break;
      case 10: {
        uint64_t s = rd.AsVarint();
        if (s > uint64_t(TaskState::kCancelled)) rd.Fail("unknown task state " + std::to_string(s));
        r->state = TaskState(s);
        break;
      }
      case 11: r->attempt = uint32_t(rd.AsVarint()); break;
      case 12: r->max_attempts = uint32_t(rd.AsVarint()); break;
      case 13: r->not_before_ms = rd.AsSigned(); break;
      case 14: r->lease_id = rd.AsBytes(); break;
      case 15: r->worker_id = rd.AsBytes(); break;
      case 16: r->lease_expires_ms = rd.AsSigned(); break;
      case 17: r->progress_json = rd.AsBytes(); break;
      case 18: r->result_json = rd.AsBytes(); break;
      case 19: r->error = rd.AsBytes(); break;
      case 20: r->created_ms = rd.AsSigned(); break;
      case 21: r->updated_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "task");
}

void Encode(const Worker& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.id);
  w.BytesIfAny(2, r.name);
  w.BytesIfAny(3, r.device);
  w.VarintIfAny(4, r.memory_bytes);
  w.BytesIfAny(5, r.version);
  w.BytesIfAny(6, r.capabilities_json);
  w.BytesIfAny(7, r.state);
  w.BytesIfAny(8, r.current_lease_id);
  w.SignedIfAny(9, r.registered_ms);
  w.SignedIfAny(10, r.last_heartbeat_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Worker* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Worker{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->id = rd.AsBytes(); break;
      case 2: r->name = rd.AsBytes(); break;
      case 3: r->device = rd.AsBytes(); break;
      case 4: r->memory_bytes = rd.AsVarint(); break;
      case 5: r->version = rd.AsBytes(); break;
      case 6: r->capabilities_json = rd.AsBytes(); break;
      case 7: r->state = rd.AsBytes(); break;
      case 8: r->current_lease_id = rd.AsBytes(); break;
      case 9: r->registered_ms = rd.AsSigned(); break;
      case 10: r->last_heartbeat_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "worker");
}

void Encode(const Prompt& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.BytesIfAny(2, r.id);
  PutMessages(w, 3, r.messages);
  w.BytesIfAny(4, r.split);
  w.BytesIfAny(5, r.source);
  w.SignedIfAny(6, r.created_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Prompt* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Prompt{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->id = rd.AsBytes(); break;
      case 3: GetMessage(rd, &r->messages); break;
      case 4: r->split = rd.AsBytes(); break;
      case 5: r->source = rd.AsBytes(); break;
      case 6: r->created_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "prompt");
}

void Encode(const Sample& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.VarintIfAny(2, r.round);
  w.BytesIfAny(3, r.prompt_id);
  w.VarintIfAny(4, r.idx);
  if (!r.tokens.empty()) {
    // Header, then the packed ids written in place (no temporary buffer).
    w.BytesHeader(5, 4 * r.tokens.size());
    PackTokens(r.tokens, out);
  }
  w.BytesIfAny(6, r.text);
  w.Double(7, r.logprob);
  if (r.rm_score) w.Double(8, *r.rm_score);
  w.BytesIfAny(9, r.policy_checkpoint_id);
  w.BytesIfAny(10, r.rm_checkpoint_id);
  w.Double(11, double(r.temperature));
  w.VarintIfAny(12, r.seed);
  w.VarintIfAny(13, r.selected ? 1 : 0);
  w.BytesIfAny(14, r.task_id);
  w.SignedIfAny(15, r.created_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Sample* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Sample{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->round = uint32_t(rd.AsVarint()); break;
      case 3: r->prompt_id = rd.AsBytes(); break;
      case 4: r->idx = uint32_t(rd.AsVarint()); break;
      case 5:
        if (!UnpackTokens(rd.AsBytes(), &r->tokens)) rd.Fail("tokens length not a multiple of 4");
        break;
      case 6: r->text = rd.AsBytes(); break;
      case 7: r->logprob = rd.AsDouble(); break;
      case 8: r->rm_score = rd.AsDouble(); break;
      case 9: r->policy_checkpoint_id = rd.AsBytes(); break;
      case 10: r->rm_checkpoint_id = rd.AsBytes(); break;
      case 11: r->temperature = float(rd.AsDouble()); break;
      case 12: r->seed = rd.AsVarint(); break;
      case 13: r->selected = rd.AsVarint() != 0; break;
      case 14: r->task_id = rd.AsBytes(); break;
      case 15: r->created_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "sample");
}

void Encode(const Annotation& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.BytesIfAny(2, r.id);
  w.BytesIfAny(3, r.raw);
  w.BytesIfAny(4, r.format);
  PutMessages(w, 5, r.prompt);
  for (const auto& s : r.responses) w.Bytes(6, s);
  w.BytesIfAny(7, r.strength);
  if (r.edited) w.Bytes(8, *r.edited);
  w.BytesIfAny(9, r.annotator);
  w.BytesIfAny(10, r.request_id);
  w.VarintIfAny(11, r.round);
  w.BytesIfAny(12, r.source_file);
  w.VarintIfAny(13, r.source_line);
  w.SignedIfAny(14, r.received_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Annotation* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Annotation{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->id = rd.AsBytes(); break;
      case 3: r->raw = rd.AsBytes(); break;
      case 4: r->format = rd.AsBytes(); break;
      case 5: GetMessage(rd, &r->prompt); break;
      case 6: r->responses.emplace_back(rd.AsBytes()); break;
      case 7: r->strength = rd.AsBytes(); break;
      case 8: r->edited = std::string(rd.AsBytes()); break;
      case 9: r->annotator = rd.AsBytes(); break;
      case 10: r->request_id = rd.AsBytes(); break;
      case 11: r->round = uint32_t(rd.AsVarint()); break;
      case 12: r->source_file = rd.AsBytes(); break;
      case 13: r->source_line = rd.AsVarint(); break;
      case 14: r->received_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "annotation");
}

void Encode(const AnnotationRequest& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.BytesIfAny(2, r.id);
  w.VarintIfAny(3, r.round);
  w.BytesIfAny(4, r.prompt_id);
  PutMessages(w, 5, r.prompt);
  w.BytesIfAny(6, r.response_a);
  w.BytesIfAny(7, r.response_b);
  w.BytesIfAny(8, r.checkpoint_a);
  w.BytesIfAny(9, r.checkpoint_b);
  w.BytesIfAny(10, r.state);
  w.BytesIfAny(11, r.annotation_id);
  w.SignedIfAny(12, r.created_ms);
  w.SignedIfAny(13, r.answered_ms);
  SealValue(out);
}
Status Decode(std::string_view v, AnnotationRequest* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = AnnotationRequest{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->id = rd.AsBytes(); break;
      case 3: r->round = uint32_t(rd.AsVarint()); break;
      case 4: r->prompt_id = rd.AsBytes(); break;
      case 5: GetMessage(rd, &r->prompt); break;
      case 6: r->response_a = rd.AsBytes(); break;
      case 7: r->response_b = rd.AsBytes(); break;
      case 8: r->checkpoint_a = rd.AsBytes(); break;
      case 9: r->checkpoint_b = rd.AsBytes(); break;
      case 10: r->state = rd.AsBytes(); break;
      case 11: r->annotation_id = rd.AsBytes(); break;
      case 12: r->created_ms = rd.AsSigned(); break;
      case 13: r->answered_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "annotation request");
}

void Encode(const Pair& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.VarintIfAny(2, r.round);
  w.BytesIfAny(3, r.id);
  PutMessages(w, 4, r.prompt);
  w.BytesIfAny(5, r.chosen);
  w.BytesIfAny(6, r.rejected);
  w.BytesIfAny(7, r.strength);
  if (r.edited) w.Bytes(8, *r.edited);
  w.BytesIfAny(9, r.source);
  w.BytesIfAny(10, r.annotation_id);
  w.BytesIfAny(11, r.annotator);
  w.SignedIfAny(12, r.created_ms);
  SealValue(out);
}
Status Decode(std::string_view v, Pair* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Pair{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->round = uint32_t(rd.AsVarint()); break;
      case 3: r->id = rd.AsBytes(); break;
      case 4: GetMessage(rd, &r->prompt); break;
      case 5: r->chosen = rd.AsBytes(); break;
      case 6: r->rejected = rd.AsBytes(); break;
      case 7: r->strength = rd.AsBytes(); break;
      case 8: r->edited = std::string(rd.AsBytes()); break;
      case 9: r->source = rd.AsBytes(); break;
      case 10: r->annotation_id = rd.AsBytes(); break;
      case 11: r->annotator = rd.AsBytes(); break;
      case 12: r->created_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "pair");
}

void Encode(const Checkpoint& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.id);
  w.BytesIfAny(2, r.run_id);
  w.BytesIfAny(3, r.path);
  w.BytesIfAny(4, r.sha256);
  w.BytesIfAny(5, r.config_hash);
  w.BytesIfAny(6, r.stage);
  w.VarintIfAny(7, r.round);
  w.BytesIfAny(8, r.variant);
  for (const auto& p : r.parents) w.Bytes(9, p);
  for (const auto& d : r.datasets) w.Bytes(10, d);
  w.BytesIfAny(11, r.hyperparameters_json);
  PutDoubles(w, 12, r.averaging_weights);
  w.BytesIfAny(13, r.metrics_json);
  w.VarintIfAny(14, r.size_bytes);
  w.SignedIfAny(15, r.created_ms);
  w.BytesIfAny(16, r.corrupt);
  SealValue(out);
}
Status Decode(std::string_view v, Checkpoint* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Checkpoint{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->id = rd.AsBytes(); break;
      case 2: r->run_id = rd.AsBytes(); break;
      case 3: r->path = rd.AsBytes(); break;
      case 4: r->sha256 = rd.AsBytes(); break;
      case 5: r->config_hash = rd.AsBytes(); break;
      case 6: r->stage = rd.AsBytes(); break;
      case 7: r->round = uint32_t(rd.AsVarint()); break;
      case 8: r->variant = rd.AsBytes(); break;
      case 9: r->parents.emplace_back(rd.AsBytes()); break;
      case 10: r->datasets.emplace_back(rd.AsBytes()); break;
      case 11: r->hyperparameters_json = rd.AsBytes(); break;
      case 12: GetDoubles(rd, &r->averaging_weights); break;
      case 13: r->metrics_json = rd.AsBytes(); break;
      case 14: r->size_bytes = rd.AsVarint(); break;
      case 15: r->created_ms = rd.AsSigned(); break;
      case 16: r->corrupt = rd.AsBytes(); break;
      default: break;
    }
  }
  return Done(rd, "checkpoint");
}

void Encode(const Event& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.VarintIfAny(2, r.seq);
  w.SignedIfAny(3, r.time_ms);
  w.BytesIfAny(4, r.kind);
  w.BytesIfAny(5, r.message);
  w.BytesIfAny(6, r.detail_json);
  SealValue(out);
}
Status Decode(std::string_view v, Event* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = Event{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->seq = rd.AsVarint(); break;
      case 3: r->time_ms = rd.AsSigned(); break;
      case 4: r->kind = rd.AsBytes(); break;
      case 5: r->message = rd.AsBytes(); break;
      case 6: r->detail_json = rd.AsBytes(); break;
      default: break;
    }
  }
  return Done(rd, "event");
}

void Encode(const IdempotencyRecord& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.key);
  w.BytesIfAny(2, r.request_hash);
  w.SignedIfAny(3, r.status_code);
  w.BytesIfAny(4, r.content_type);
  w.BytesIfAny(5, r.body);
  w.SignedIfAny(6, r.created_ms);
  SealValue(out);
}
Status Decode(std::string_view v, IdempotencyRecord* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = IdempotencyRecord{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->key = rd.AsBytes(); break;
      case 2: r->request_hash = rd.AsBytes(); break;
      case 3: r->status_code = int32_t(rd.AsSigned()); break;
      case 4: r->content_type = rd.AsBytes(); break;
      case 5: r->body = rd.AsBytes(); break;
      case 6: r->created_ms = rd.AsSigned(); break;
      default: break;
    }
  }
  return Done(rd, "idempotency");
}

void Encode(const DatasetMember& r, std::string* out) {
  BeginValue(out);
  FieldWriter w(out);
  w.BytesIfAny(1, r.run_id);
  w.VarintIfAny(2, r.round);
  w.BytesIfAny(3, r.dataset);
  w.VarintIfAny(4, r.member_round);
  w.BytesIfAny(5, r.member_id);
  w.VarintIfAny(6, r.member_idx);
  SealValue(out);
}
Status Decode(std::string_view v, DatasetMember* r) {
  std::string_view f;
  HERD_RETURN_IF_ERROR(OpenValue(v, &f));
  *r = DatasetMember{};
  FieldReader rd(f);
  while (rd.Next()) {
    switch (rd.field()) {
      case 1: r->run_id = rd.AsBytes(); break;
      case 2: r->round = uint32_t(rd.AsVarint()); break;
      case 3: r->dataset = rd.AsBytes(); break;
      case 4: r->member_round = uint32_t(rd.AsVarint()); break;
      case 5: r->member_id = rd.AsBytes(); break;
      case 6: r->member_idx = uint32_t(rd.AsVarint()); break;
      default: break;
    }
  }
  return Done(rd, "dataset member");
}

}  // namespace herd::stores
