#include "daemon/reader.h"

#include "stores/store.h"

namespace herd::daemon {

Reader::Reader(stores::Store* store, const Scheduler* scheduler) : store_(store), scheduler_(scheduler) {}

Status Reader::CheckRun(const std::string& run_id) { return store_->GetRun(run_id).status(); }

Result<Run> Reader::GetRun(const std::string& run_id) { return store_->GetRun(run_id); }

Result<Page<Run>> Reader::ListRuns(const PageRequest& req) { return store_->ListRuns(req); }

Result<Round> Reader::GetRound(const std::string& run_id, uint32_t round) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->GetRound(run_id, round);
}

Result<Page<Round>> Reader::ListRounds(const std::string& run_id, const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListRounds(run_id, req);
}

Result<Page<Prompt>> Reader::ListPrompts(const std::string& run_id, const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListPrompts(run_id, req);
}

Result<Page<Sample>> Reader::ListSamples(const std::string& run_id, std::optional<uint32_t> round,
                                         const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListSamples(run_id, round, req);
}

Result<Page<Pair>> Reader::ListPairs(const std::string& run_id, std::optional<uint32_t> round,
                                     const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListPairs(run_id, round, req);
}

Result<Annotation> Reader::GetAnnotation(const std::string& run_id, const std::string& annotation_id) {
  return store_->GetAnnotation(run_id, annotation_id);
}

Result<Page<Annotation>> Reader::ListAnnotations(const std::string& run_id, const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListAnnotations(run_id, req);
}

Result<AnnotationRequest> Reader::GetAnnotationRequest(const std::string& run_id, const std::string& request_id) {
  return store_->GetAnnotationRequest(run_id, request_id);
}

Result<Page<AnnotationRequest>> Reader::ListAnnotationRequests(const std::string& run_id, const std::string& state,
                                                               const PageRequest& req) {
  if (!state.empty() && state != "pending" && state != "answered" && state != "expired") {
    return Status::InvalidArgument("state: must be pending, answered or expired, got '" + state + "'");
  }
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListAnnotationRequests(run_id, state, req);
}

Result<Page<Checkpoint>> Reader::ListCheckpoints(const std::string& run_id, const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListCheckpoints(run_id, req);
}

Result<Page<Event>> Reader::ListEvents(const std::string& run_id, const PageRequest& req) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  return store_->ListEvents(run_id, req);
}

Status Reader::ForEachSftExample(const std::string& run_id, uint32_t round,
                                 const std::function<bool(const SftExample&)>& fn) {
  HERD_RETURN_IF_ERROR(CheckRun(run_id));
  Status err;
  SftExample ex;
  HERD_RETURN_IF_ERROR(store_->ForEachSftSample(run_id, round, [&](const Sample& s) {
    auto p = store_->GetPrompt(run_id, s.prompt_id);
    if (!p.ok()) {
      err = p.status().WithContext("SFT set of round " + std::to_string(round));
      return false;
    }
    ex.sample = s;
    ex.prompt = std::move(p).value();
    return fn(ex);
  }));
  return err;
}

std::vector<Task> Reader::ListTasks(const TaskFilter& f) const {
  return scheduler_->List([&](const Task& t) {
    return (f.run.empty() || t.run == f.run) && (!f.state || t.state == *f.state);
  });
}

TaskCounts Reader::CountTasks() const { return scheduler_->Counts(); }

uint64_t Reader::TaskRetries() const { return scheduler_->retries(); }

LeaseCheck Reader::CheckLease(const std::string& lease_id, Task* task) const {
  return scheduler_->CheckLease(lease_id, task);
}

StoreSizes Reader::Sizes() {
  return {store_->LiveDataBytes(), store_->PendingCompactionBytes()};
}

}  // namespace herd::daemon
