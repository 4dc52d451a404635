// JSONL uploads of prompts and annotations, streamed: the body reaches a
// BodySink chunk by chunk and is parsed line by line (api/ingest), so a
// file of hundreds of MB is never held whole. Annotations go through
// ingest::AnnotationUpload with a writer backed by the orchestrator;
// Idempotency-Key replays the first response of a key.
#include <nlohmann/json.hpp>

#include <memory>
#include <set>

#include "api/ingest/annotation.h"
#include "api/ingest/upload.h"
#include "api/routes/route_groups.h"
#include "api/routes/route_util.h"
#include "common/sha256.h"
#include "daemon/idempotency.h"
#include "daemon/orchestrator.h"
#include "daemon/reader.h"
#include "daemon/run_config.h"

namespace herd::api {

using nlohmann::json;

namespace {

// Records per synced batch in a non-atomic upload. An atomic upload keeps
// its records until Commit (it must store all or nothing).
constexpr size_t kFlushEvery = 1000;

daemon::Annotation ToDaemon(const ingest::Annotation& a, const std::string& source) {
  daemon::Annotation s;
  s.id = a.id;
  s.raw = a.raw;
  s.format = ingest::FormatName(a.format);
  for (const auto& m : a.prompt) s.prompt.push_back({m.role, m.content});
  size_t first = 0;
  if (a.edited && !a.responses.empty()) {
    s.edited = a.responses[0];  // the annotator's edit ranks above the chosen response
    first = 1;
  }
  for (size_t i = first; i < a.responses.size(); ++i) s.responses.push_back(a.responses[i]);
  s.strength = ingest::StrengthName(a.strength);
  s.annotator = a.annotator.value_or("");
  s.source_file = source;
  s.source_line = a.line;
  return s;
}

// Stores annotations through the orchestrator (which adds their implied
// pairs to the run's current round in the same batch).
class OrchestratorWriter final : public ingest::AnnotationWriter {
 public:
  OrchestratorWriter(daemon::Orchestrator* orch, daemon::Reader* reader, std::string run, std::string source,
                     bool atomic)
      : orch_(orch), reader_(reader), run_(std::move(run)), source_(std::move(source)), atomic_(atomic) {}

  Status Add(const ingest::Annotation& a, bool* duplicate) override {
    *duplicate = !staged_.insert(a.id).second || reader_->GetAnnotation(run_, a.id).ok();
    if (*duplicate) return Status::Ok();
    pending_.push_back(ToDaemon(a, source_));
    if (!atomic_ && pending_.size() >= kFlushEvery) return Flush();
    return Status::Ok();
  }
  Status Commit() override { return Flush(); }
  void Abort() override { pending_.clear(); }

 private:
  Status Flush() {
    if (pending_.empty()) return Status::Ok();
    auto r = orch_->AddAnnotations(run_, std::move(pending_));
    pending_.clear();
    return r.ok() ? Status::Ok() : r.status();
  }
  daemon::Orchestrator* orch_;
  daemon::Reader* reader_;
  std::string run_, source_;
  bool atomic_;
  std::set<std::string> staged_;  // ids seen in this upload (ids only, not records)
  std::vector<daemon::Annotation> pending_;
};

class PromptSink final : public BodySink {
 public:
  PromptSink(daemon::Orchestrator* orch, std::string run, std::string source, bool atomic, size_t max_errors,
             size_t max_line)
      : orch_(orch), run_(std::move(run)), source_(std::move(source)), atomic_(atomic), max_errors_(max_errors),
        reader_(
            [this](ingest::PromptRecord&& p) {
              daemon::Prompt s;
              s.id = std::move(p.id);
              for (auto& m : p.messages) s.messages.push_back({std::move(m.role), std::move(m.content)});
              s.split = p.split == ingest::Split::kEval ? "eval" : "train";
              s.source = source_;
              pending_.push_back(std::move(s));
            },
            [this](ingest::LineError&& e) {
              ++rejected_;
              if (errors_.size() < max_errors_) errors_.push_back(std::move(e));
            },
            max_line) {}

  Status OnChunk(std::string_view chunk) override {
    reader_.Feed(chunk);
    if (!atomic_ && pending_.size() >= kFlushEvery) return Flush();
    return Status::Ok();
  }
  Response Finish(const Request&) override {
    reader_.Finish();
    if (atomic_ && rejected_ > 0) {
      std::vector<FieldError> fe;
      for (const auto& e : errors_) fe.push_back({"", static_cast<long long>(e.line), e.detail});
      return MakeProblem(ProblemType::kUnprocessable,
                         std::to_string(rejected_) + " invalid line(s) in an atomic upload; nothing was stored",
                         std::move(fe));
    }
    Status s = Flush();
    if (!s.ok()) return Problem(s);
    json errs = json::array();
    for (const auto& e : errors_) errs.push_back({{"line", e.line}, {"detail", e.detail}});
    return JsonResponse(200, {{"accepted", accepted_}, {"duplicates", duplicates_}, {"rejected", rejected_},
                              {"errors", errs}, {"errors_truncated", errors_.size() < rejected_}});
  }

 private:
  Status Flush() {
    if (pending_.empty()) return Status::Ok();
    auto r = orch_->AddPrompts(run_, std::move(pending_));
    pending_.clear();
    if (!r.ok()) return r.status();
    accepted_ += static_cast<uint64_t>(r->accepted);
    duplicates_ += static_cast<uint64_t>(r->duplicates);
    return Status::Ok();
  }
  daemon::Orchestrator* orch_;
  std::string run_, source_;
  bool atomic_;
  size_t max_errors_;
  ingest::PromptReader reader_;
  std::vector<daemon::Prompt> pending_;
  uint64_t accepted_ = 0, duplicates_ = 0, rejected_ = 0;
  std::vector<ingest::LineError> errors_;
};

// Remembers the response of an upload under its Idempotency-Key, so a
// client that retries (after a timeout, say) gets the same answer and
// nothing is stored twice.
class IdempotentSink final : public BodySink {
 public:
  IdempotentSink(std::unique_ptr<BodySink> inner, daemon::IdempotencyLog* log, std::string key)
      : inner_(std::move(inner)), log_(log), key_(std::move(key)) {}
  Status OnChunk(std::string_view chunk) override {
    hash_.Update(chunk);
    return inner_->OnChunk(chunk);
  }
  Response Finish(const Request& req) override {
    Response r = inner_->Finish(req);
    if (r.status == 200 || r.status == 422) {
      daemon::IdempotencyRecord rec;
      rec.key = key_;
      rec.request_hash = hash_.FinishHex();
      rec.status_code = r.status;
      rec.content_type = r.content_type;
      rec.body = r.body;
      Status s = log_->Put(rec);
      if (!s.ok()) return Problem(s);
    }
    return r;
  }

 private:
  std::unique_ptr<BodySink> inner_;
  daemon::IdempotencyLog* log_;
  std::string key_;
  Sha256 hash_;
};

class ReplaySink final : public BodySink {
 public:
  explicit ReplaySink(daemon::IdempotencyRecord rec) : rec_(std::move(rec)) {}
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
  daemon::IdempotencyRecord rec_;
};

// Wraps a sink for the request's Idempotency-Key, or replays a stored answer.
Result<std::unique_ptr<BodySink>> WithIdempotency(daemon::IdempotencyLog* log, const Request& req, const char* kind,
                                                  const std::function<Result<std::unique_ptr<BodySink>>()>& make) {
  std::string key(req.headers.Get("Idempotency-Key").value_or(""));
  if (key.size() > 256) return Status::InvalidArgument("header 'Idempotency-Key': longer than 256 bytes");
  if (key.empty()) return make();
  std::string full = std::string(kind) + "/" + req.Param("run") + "/" + key;
  HERD_ASSIGN_OR_RETURN(auto prev, log->Get(full));
  if (prev) return std::unique_ptr<BodySink>(new ReplaySink(std::move(*prev)));
  HERD_ASSIGN_OR_RETURN(auto sink, make());
  return std::unique_ptr<BodySink>(new IdempotentSink(std::move(sink), log, full));
}

}  // namespace

Status AddUploadRoutes(Router& r, const RouteCtx& c) {
  auto ctx = std::make_shared<const RouteCtx>(c);  // shared by the routes' handlers

  HERD_RETURN_IF_ERROR(r.AddStreaming("POST", "/v1/runs/{run}/annotations",
      [ctx](const Request& req) -> Result<std::unique_ptr<BodySink>> {
        HERD_ASSIGN_OR_RETURN(daemon::Run run, ctx->reader->GetRun(req.Param("run")));
        HERD_ASSIGN_OR_RETURN(daemon::RunConfig cfg, daemon::ParseRunConfig(run.config_json));
        ingest::UploadOptions defaults;
        defaults.ingest.max_line_bytes = ctx->opts.max_line_bytes;
        if (auto s = ingest::ParseStrength(cfg.annotation.default_strength)) defaults.ingest.default_strength = *s;
        defaults.max_reported_errors = ctx->opts.max_listed_errors;
        defaults.metrics = ctx->metrics;
        HERD_ASSIGN_OR_RETURN(ingest::UploadOptions opts, ingest::UploadOptionsFromRequest(req, defaults));
        std::string source(req.headers.Get("Idempotency-Key").value_or("upload"));
        return WithIdempotency(ctx->idempotency, req, "annotations", [&]() -> Result<std::unique_ptr<BodySink>> {
          auto writer = std::make_unique<OrchestratorWriter>(ctx->orch, ctx->reader, req.Param("run"), source,
                                                             opts.atomic);
          return std::unique_ptr<BodySink>(new ingest::AnnotationUpload(opts, std::move(writer)));
        });
      }, RouteOptions{Role::kAnnotator}));

  HERD_RETURN_IF_ERROR(r.AddStreaming("POST", "/v1/runs/{run}/prompts",
      [ctx](const Request& req) -> Result<std::unique_ptr<BodySink>> {
        HERD_RETURN_IF_ERROR(ctx->reader->GetRun(req.Param("run")).status());
        HERD_ASSIGN_OR_RETURN(ingest::UploadOptions opts, ingest::UploadOptionsFromRequest(req, {}));
        std::string source(req.headers.Get("Idempotency-Key").value_or("upload"));
        return WithIdempotency(ctx->idempotency, req, "prompts", [&]() -> Result<std::unique_ptr<BodySink>> {
          return std::unique_ptr<BodySink>(new PromptSink(ctx->orch, req.Param("run"), source, opts.atomic,
                                                          ctx->opts.max_listed_errors, ctx->opts.max_line_bytes));
        });
      }, RouteOptions{Role::kAdmin}));
  return Status::Ok();
}

}  // namespace herd::api
