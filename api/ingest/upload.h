#pragma once
// The body sink of POST /v1/runs/{run}/annotations: parses the streamed
// JSONL chunk by chunk and hands each valid record to an AnnotationWriter
// (the daemon's store adapter), so memory stays O(line) whatever the file
// size. Reply (200):
//   {"accepted": N, "duplicates": N, "rejected": N,
//    "errors": [{"line": L, "detail": "..."}], "errors_truncated": bool}
// With ?atomic=true any invalid line → 422 problem+json (with "errors"),
// and the writer is told to Abort, so nothing is stored.
#include <memory>
#include <vector>

#include "api/ingest/annotation.h"
#include "api/server/router.h"

namespace herd::metrics {
class Registry;
}

namespace herd::ingest {

// Implemented by whoever stores annotations (the daemon).
class AnnotationWriter {
 public:
  virtual ~AnnotationWriter() = default;
  // Stages one record. *duplicate = true when a record with this id is
  // already stored or staged (re-uploads store nothing twice). An error
  // stops the upload.
  virtual Status Add(const Annotation& a, bool* duplicate) = 0;
  // Makes everything staged durable; called once, at the end.
  virtual Status Commit() = 0;
  // Drops everything staged; called instead of Commit.
  virtual void Abort() = 0;
};

struct UploadOptions {
  IngestOptions ingest;
  // Any invalid line fails the whole upload (422) and stores nothing.
  // Default: false.
  bool atomic = false;
  // At most this many line errors are listed in the reply (all are
  // counted). Default: 1000.
  size_t max_reported_errors = 1000;
  // When set, each finished upload adds its lines to
  // herd_annotations_total{result="accepted|duplicate|rejected|aborted"}
  // ("aborted": valid lines of a failed atomic upload; CountAnnotations).
  // Default: null.
  metrics::Registry* metrics = nullptr;
};

// Adds n to herd_annotations_total{result}: every annotation herdd takes
// in, lines of finished uploads (accepted, duplicate, rejected, aborted)
// and answers to its annotation requests (answered). A null registry
// counts nothing.
void CountAnnotations(metrics::Registry* registry, const std::string& result, uint64_t n);

// defaults + the request's query: "atomic=true|false|1|0". InvalidArgument
// naming the parameter otherwise.
Result<UploadOptions> UploadOptionsFromRequest(const api::Request& req, UploadOptions defaults);

class AnnotationUpload : public api::BodySink {
 public:
  AnnotationUpload(UploadOptions opts, std::unique_ptr<AnnotationWriter> writer);
  Status OnChunk(std::string_view chunk) override;
  api::Response Finish(const api::Request& req) override;

  uint64_t accepted() const { return accepted_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t rejected() const { return rejected_; }

 private:
  void OnRecord(Annotation&& a);
  void OnError(LineError&& e);
  void Count(uint64_t accepted, uint64_t duplicates, uint64_t rejected, uint64_t aborted);
  UploadOptions opts_;
  std::unique_ptr<AnnotationWriter> writer_;
  AnnotationReader reader_;
  Status writer_status_;
  uint64_t accepted_ = 0, duplicates_ = 0, rejected_ = 0;
  std::vector<LineError> errors_;  // first max_reported_errors
};

}  // namespace herd::ingest
