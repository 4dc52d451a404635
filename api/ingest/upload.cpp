#include "api/ingest/upload.h"

#include "api/metrics/registry.h"
#include "api/wire/json_util.h"
#include "api/wire/problem.h"

namespace herd::ingest {

Result<UploadOptions> UploadOptionsFromRequest(const api::Request& req, UploadOptions opts) {
  if (auto a = req.Query("atomic")) {
    if (*a == "true" || *a == "1") {
      opts.atomic = true;
    } else if (*a == "false" || *a == "0") {
      opts.atomic = false;
    } else {
      return Status::InvalidArgument("query parameter 'atomic': '" + *a +
                                     "' is not one of true, false");
    }
  }
  return opts;
}

AnnotationUpload::AnnotationUpload(UploadOptions opts, std::unique_ptr<AnnotationWriter> writer)
    : opts_(opts),
      writer_(std::move(writer)),
      reader_(
          opts.ingest, [this](Annotation&& a) { OnRecord(std::move(a)); },
          [this](LineError&& e) { OnError(std::move(e)); }) {}

void AnnotationUpload::OnRecord(Annotation&& a) {
  // Atomic uploads that already failed only keep counting errors.
  if (!writer_status_.ok() || (opts_.atomic && rejected_ > 0)) return;
  bool dup = false;
  writer_status_ = writer_->Add(a, &dup);
  if (!writer_status_.ok()) {
    writer_status_ = writer_status_.WithContext("line " + std::to_string(a.line));
    return;
  }
  if (dup) {
    ++duplicates_;
  } else {
    ++accepted_;
  }
}

void AnnotationUpload::OnError(LineError&& e) {
  ++rejected_;
  if (errors_.size() < opts_.max_reported_errors) errors_.push_back(std::move(e));
}

void CountAnnotations(metrics::Registry* registry, const std::string& result, uint64_t n) {
  if (registry == nullptr) return;
  registry
      ->AddCounter("herd_annotations_total",
                   "Annotations taken in: lines of finished uploads and answers to annotation "
                   "requests, by result.",
                   {"result"})
      .WithLabels({result})
      .Increment(static_cast<double>(n));
}

void AnnotationUpload::Count(uint64_t accepted, uint64_t duplicates, uint64_t rejected,
                             uint64_t aborted) {
  CountAnnotations(opts_.metrics, "accepted", accepted);
  CountAnnotations(opts_.metrics, "duplicate", duplicates);
  CountAnnotations(opts_.metrics, "rejected", rejected);
  CountAnnotations(opts_.metrics, "aborted", aborted);
}

Status AnnotationUpload::OnChunk(std::string_view chunk) {
  reader_.Feed(chunk);
  if (!writer_status_.ok()) writer_->Abort();
  return writer_status_;
}

api::Response AnnotationUpload::Finish(const api::Request&) {
  reader_.Finish();
  if (!writer_status_.ok()) {
    writer_->Abort();
    return api::ProblemFromStatus(writer_status_);
  }
  if (opts_.atomic && rejected_ > 0) {
    writer_->Abort();
    Count(0, 0, rejected_, accepted_ + duplicates_);
    std::vector<api::FieldError> errs;
    for (auto& e : errors_) errs.push_back({"", static_cast<long long>(e.line), e.detail});
    return api::MakeProblem(api::ProblemType::kUnprocessable,
                            std::to_string(rejected_) +
                                " invalid line(s) in an atomic upload; nothing was stored",
                            std::move(errs));
  }
  Status st = writer_->Commit();
  if (!st.ok()) return api::ProblemFromStatus(st.WithContext("storing annotations"));
  Count(accepted_, duplicates_, rejected_, 0);
  nlohmann::json errs = nlohmann::json::array();
  for (const auto& e : errors_) errs.push_back({{"line", e.line}, {"detail", e.detail}});
  nlohmann::json j = {{"accepted", accepted_},
                      {"duplicates", duplicates_},
                      {"rejected", rejected_},
                      {"errors", std::move(errs)},
                      {"errors_truncated", rejected_ > errors_.size()}};
  return api::Response::Json(200, api::DumpJson(j));
}

}  // namespace herd::ingest
