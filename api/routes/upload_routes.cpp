// JSONL uploads of prompts and annotations, streamed: the body reaches a
// BodySink chunk by chunk and is parsed line by line, so a file of
// hundreds of MB is never held whole (except the parsed records of an
// ?atomic=true upload, which must all commit together or not at all).
#include <nlohmann/json.hpp>

#include <memory>

#include "api/ingest/annotation.h"
#include "api/metrics/registry.h"
#include "api/routes/route_groups.h"
#include "api/routes/route_util.h"
#include "daemon/orchestrator.h"
#include "daemon/run_config.h"
#include "stores/sha256.h"
#include "stores/store.h"

namespace herd::api {

using nlohmann::json;

namespace {

constexpr size_t kFlushEvery = 1000;  // records per synced batch in non-atomic mode

stores::Annotation ToStore(ingest::Annotation&& a, const std::string& source) {
  stores::Annotation s;
  s.id = std::move(a.id);
  s.raw = std::move(a.raw);
  s.format = ingest::FormatName(a.format);
  for (auto& m : a.prompt) s.prompt.push_back({std::move(m.role), std::move(m.content)});
  size_t first = 0;
  if (a.edited && !a.responses.empty()) {
    s.edited = std::move(a.responses[0]);
    first = 1;
  }
  for (size_t i = first; i < a.responses.size(); ++i) s.responses.push_back(std::move(a.responses[i]));
  s.strength = ingest::StrengthName(a.strength);
  s.annotator = a.annotator.value_or("");
  s.source_file = source;
  s.source_line = a.line;
  return s;
}

// Shared by both uploads: counts, listed errors, idempotency and the reply.
class UploadSink : public BodySink {
 public:
  UploadSink(const RouteCtx& c, std::string run, std::string idem_key, bool atomic, const char* kind)
      : c_(c), run_(std::move(run)), idem_key_(std::move(idem_key)), atomic_(atomic), kind_(kind) {}

  Response Finish(const Request&) override {
    FinishReader();
    Status s = Flush(/*final=*/true);
    if (!s.ok()) return Problem(s);
    json errs = json::array();
    for (const auto& e : errors_) errs.push_back({{"line", e.line}, {"detail", e.detail}});
    json body = {{"accepted", accepted_}, {"duplicates", duplicates_}, {"rejected", rejected_},
                 {"errors", errs}};
    if (errors_.size() < static_cast<size_t>(rejected_)) body["errors_truncated"] = true;
    Count();
    if (atomic_ && rejected_ > 0) {
      std::vector<FieldError> fe;
      for (const auto& e : errors_) fe.push_back({"", static_cast<long long>(e.line), e.detail});
      return MakeProblem(ProblemType::kUnprocessable,
                         std::to_string(rejected_) + " invalid line(s); atomic upload stored nothing",
                         std::move(fe));
    }
    Response r = JsonResponse(200, body);
    if (!idem_key_.empty()) {
      stores::IdempotencyRecord rec;
      rec.key = IdemKey();
      rec.request_hash = stores::ToHex(hash_.Finish());
      rec.status_code = r.status;
      rec.content_type = r.content_type;
      rec.body = r.body;
      Status st = c_.store->PutIdempotency(rec);
      if (!st.ok()) return Problem(st);
    }
    return r;
  }

 protected:
  virtual void FinishReader() = 0;
  virtual Status FlushRecords(bool all) = 0;
  virtual size_t Pending() const = 0;

  Status Hash(std::string_view chunk) {
    hash_.Update(chunk);
    return Status::Ok();
  }
  Status Flush(bool final) {
    if (atomic_ && (!final || rejected_ > 0)) return Status::Ok();
    if (!final && Pending() < kFlushEvery) return Status::Ok();
    return FlushRecords(final);
  }
  void LineError(ingest::LineError&& e) {
    ++rejected_;
    if (errors_.size() < c_.opts.max_listed_errors) errors_.push_back(std::move(e));
  }
  void Count() {
    if (!c_.metrics || std::string(kind_) != "annotations") return;
    auto& f = c_.metrics->AddCounter("herd_annotations_total",
                                     "Annotation lines received, by result", {"result"});
    f.WithLabels({"accepted"}).Inc(static_cast<double>(accepted_));
    f.WithLabels({"duplicate"}).Inc(static_cast<double>(duplicates_));
    f.WithLabels({"rejected"}).Inc(static_cast<double>(rejected_));
  }
  std::string IdemKey() const { return std::string(kind_) + "/" + run_ + "/" + idem_key_; }

  const RouteCtx& c_;
  std::string run_;
  std::string idem_key_;
  bool atomic_;
  const char* kind_;
  int64_t accepted_ = 0, duplicates_ = 0, rejected_ = 0;
  std::vector<ingest::LineError> errors_;
  stores::Sha256 hash_;
};

class AnnotationSink final : public UploadSink {
 public:
  AnnotationSink(const RouteCtx& c, std::string run, std::string key, bool atomic,
                 ingest::IngestOptions opts)
      : UploadSink(c, std::move(run), std::move(key), atomic, "annotations"),
        source_(idem_key_.empty() ? "upload" : idem_key_),
        reader_(opts, [this](ingest::Annotation&& a) { pending_.push_back(ToStore(std::move(a), source_)); },
                [this](ingest::LineError&& e) { LineError(std::move(e)); }) {}

  Status OnChunk(std::string_view chunk) override {
    Hash(chunk);
    reader_.Feed(chunk);
    return Flush(false);
  }

 private:
  void FinishReader() override { reader_.Finish(); }
  size_t Pending() const override { return pending_.size(); }
  Status FlushRecords(bool) override {
    if (pending_.empty()) return Status::Ok();
    auto r = c_.orch->AddAnnotations(run_, std::move(pending_));
    pending_.clear();
    if (!r.ok()) return r.status();
    accepted_ += r->accepted;
    duplicates_ += r->duplicates;
    return Status::Ok();
  }
  std::string source_;
  ingest::AnnotationReader reader_;
  std::vector<stores::Annotation> pending_;
};

class PromptSink final : public UploadSink {
 public:
  PromptSink(const RouteCtx& c, std::string run, std::string key, bool atomic)
      : UploadSink(c, std::move(run), std::move(key), atomic, "prompts"),
        reader_(
            [this](ingest::PromptRecord&& p) {
              stores::Prompt s;
              s.id = std::move(p.id);
              for (auto& m : p.messages) s.messages.push_back({std::move(m.role), std::move(m.content)});
              s.split = p.split == ingest::Split::kEval ? "eval" : "train";
              s.source = idem_key_.empty() ? "upload" : idem_key_;
              pending_.push_back(std::move(s));
            },
            [this](ingest::LineError&& e) { LineError(std::move(e)); }, c.opts.max_line_bytes) {}

  Status OnChunk(std::string_view chunk) override {
    Hash(chunk);
    reader_.Feed(chunk);
    return Flush(false);
  }

 private:
  void FinishReader() override { reader_.Finish(); }
  size_t Pending() const override { return pending_.size(); }
  Status FlushRecords(bool) override {
    if (pending_.empty()) return Status::Ok();
    auto r = c_.orch->AddPrompts(run_, std::move(pending_));
    pending_.clear();
    if (!r.ok()) return r.status();
    accepted_ += r->accepted;
    duplicates_ += r->duplicates;
    return Status::Ok();
  }
  ingest::PromptReader reader_;
  std::vector<stores::Prompt> pending_;
};

// A replayed Idempotency-Key answers with the stored response, unread.
class ReplaySink final : public BodySink {
 public:
  explicit ReplaySink(stores::IdempotencyRecord rec) : rec_(std::move(rec)) {}
  Status OnChunk(std::string_view) override { return Status::Ok(); }
  Response Finish(const Request&) override {
    Response r;
    r.status = rec_.status_code;
    r.content_type = rec_.content_type;
    r.body = rec_.body;
    r.headers.Set("Idempotent-Replayed", "true");
    return r;
  }

 private:
  stores::IdempotencyRecord rec_;
};

Result<bool> AtomicFlag(const Request& req) {
  auto a = req.Query("atomic");
  if (!a || *a == "false" || *a == "0") return false;
  if (*a == "true" || *a == "1") return true;
  return Status::InvalidArgument("query parameter 'atomic': must be true or false, got '" + *a + "'");
}

}  // namespace

Status AddUploadRoutes(Router& r, const RouteCtx& c) {
  auto ctx = std::make_shared<const RouteCtx>(c);  // shared by the routes' handlers
  auto open = [ctx](const Request& req, const char* kind) -> Result<std::pair<std::string, bool>> {
    HERD_ASSIGN_OR_RETURN(bool atomic, AtomicFlag(req));
    auto run = ctx->store->GetRun(req.Param("run"));
    if (!run.ok()) return run.status();
    (void)kind;
    std::string key(req.headers.Get("Idempotency-Key").value_or(""));
    if (key.size() > 256) return Status::InvalidArgument("header 'Idempotency-Key': longer than 256 bytes");
    return std::make_pair(key, atomic);
  };

  HERD_RETURN_IF_ERROR(r.AddStreaming("POST", "/v1/runs/{run}/annotations",
      [ctx, open](const Request& req) -> Result<std::unique_ptr<BodySink>> {
        HERD_ASSIGN_OR_RETURN(auto ka, open(req, "annotations"));
        if (!ka.first.empty()) {
          auto prev = ctx->store->GetIdempotency("annotations/" + req.Param("run") + "/" + ka.first);
          if (prev.ok()) return std::unique_ptr<BodySink>(new ReplaySink(*prev));
        }
        HERD_ASSIGN_OR_RETURN(stores::Run run, ctx->store->GetRun(req.Param("run")));
        HERD_ASSIGN_OR_RETURN(daemon::RunConfig cfg, daemon::ParseRunConfig(run.config_json));
        ingest::IngestOptions io;
        io.max_line_bytes = ctx->opts.max_line_bytes;
        if (auto s = ingest::ParseStrength(cfg.annotation.default_strength)) io.default_strength = *s;
        return std::unique_ptr<BodySink>(new AnnotationSink(*ctx, req.Param("run"), ka.first, ka.second, io));
      }, RouteOptions{Role::kAnnotator}));

  HERD_RETURN_IF_ERROR(r.AddStreaming("POST", "/v1/runs/{run}/prompts",
      [ctx, open](const Request& req) -> Result<std::unique_ptr<BodySink>> {
        HERD_ASSIGN_OR_RETURN(auto ka, open(req, "prompts"));
        if (!ka.first.empty()) {
          auto prev = ctx->store->GetIdempotency("prompts/" + req.Param("run") + "/" + ka.first);
          if (prev.ok()) return std::unique_ptr<BodySink>(new ReplaySink(*prev));
        }
        return std::unique_ptr<BodySink>(new PromptSink(*ctx, req.Param("run"), ka.first, ka.second));
      }, RouteOptions{Role::kAdmin}));
  return Status::Ok();
}

}  // namespace herd::api
