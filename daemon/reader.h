#pragma once
// The daemon's read side: everything the API shows of runs, rounds, data,
// annotation requests, checkpoints, events, tasks and the store itself,
// in daemon types (daemon/records.h, daemon/task.h). Writes go through the
// Orchestrator; the Reader changes nothing.
//
// Run-scoped listings answer NotFound naming the run when it does not
// exist (an empty page would hide a typo). Listings page by AIP-158 tokens
// (docs/store.md "Listings and page tokens"): a token is valid only for the
// same listing, and resumes after the last record returned.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/records.h"
#include "daemon/scheduler.h"
#include "daemon/task.h"

namespace herd::stores {
class Store;
}

namespace herd::daemon {

// One example of a round's SFT set: a selected sample and its prompt.
struct SftExample {
  Sample sample;
  Prompt prompt;
};

// What /v1/tasks filters on; "" / nullopt match everything.
struct TaskFilter {
  std::string run;
  std::optional<TaskState> state;
};

// RocksDB's size estimates, summed over column families.
struct StoreSizes {
  uint64_t live_data_bytes = 0;           // SST files only (not memtables)
  uint64_t pending_compaction_bytes = 0;
};

class Reader {
 public:
  // Neither is owned; both must outlive the Reader.
  Reader(stores::Store* store, const Scheduler* scheduler);

  // ---- runs and rounds ------------------------------------------------------
  Result<Run> GetRun(const std::string& run_id);
  Result<Page<Run>> ListRuns(const PageRequest& req);
  Result<Round> GetRound(const std::string& run_id, uint32_t round);
  Result<Page<Round>> ListRounds(const std::string& run_id, const PageRequest& req);

  // ---- data of a run -------------------------------------------------------
  Result<Page<Prompt>> ListPrompts(const std::string& run_id, const PageRequest& req);
  // round nullopt: every round.
  Result<Page<Sample>> ListSamples(const std::string& run_id, std::optional<uint32_t> round,
                                   const PageRequest& req);
  Result<Page<Pair>> ListPairs(const std::string& run_id, std::optional<uint32_t> round,
                               const PageRequest& req);
  Result<Annotation> GetAnnotation(const std::string& run_id, const std::string& annotation_id);
  Result<Page<Annotation>> ListAnnotations(const std::string& run_id, const PageRequest& req);
  Result<AnnotationRequest> GetAnnotationRequest(const std::string& run_id, const std::string& request_id);
  // state "" lists every state; otherwise "pending", "answered" or "expired".
  Result<Page<AnnotationRequest>> ListAnnotationRequests(const std::string& run_id, const std::string& state,
                                                         const PageRequest& req);
  Result<Page<Checkpoint>> ListCheckpoints(const std::string& run_id, const PageRequest& req);
  Result<Page<Event>> ListEvents(const std::string& run_id, const PageRequest& req);
  // The SFT set of a round as it was materialised (its recorded members),
  // each with its prompt; fn returns false to stop. A member whose sample
  // or prompt is gone is an error, never skipped.
  Status ForEachSftExample(const std::string& run_id, uint32_t round,
                           const std::function<bool(const SftExample&)>& fn);

  // ---- tasks (the scheduler's memory, which mirrors the store) -------------
  std::vector<Task> ListTasks(const TaskFilter& filter) const;
  TaskCounts CountTasks() const;
  // Tasks put back in the queue after a failure or an expired lease.
  uint64_t TaskRetries() const;
  // Whether a lease id is the current lease of its task; *task gets the
  // task when known.
  LeaseCheck CheckLease(const std::string& lease_id, Task* task = nullptr) const;

  // ---- the store --------------------------------------------------------------
  StoreSizes Sizes();

 private:
  Status CheckRun(const std::string& run_id);
  stores::Store* store_;
  const Scheduler* scheduler_;
};

}  // namespace herd::daemon
