#pragma once
// The task scheduler: a queue of tasks leased to pulling workers.
//
// Rules (docs/scheduler.md):
//  - A worker leases the highest-priority queued task it can run (FIFO among
//    equals) whose backoff has passed. The lease id is the fence: results
//    and heartbeats carrying any other id are refused.
//  - A lease that is not heartbeaten for lease_ttl expires; the task is
//    queued again with exponential backoff, until max_attempts leases have
//    been spent, then it fails.
//  - Every transition is first handed to the caller's CommitFn (which writes
//    it, and anything that belongs with it, in one synced RocksDB batch); the
//    in-memory state changes only when that commit succeeds.
//  - Completions are idempotent: completing an already-succeeded task with
//    its own lease id answers kAlreadyDone and commits nothing.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/clock.h"
#include "daemon/task.h"

namespace herd::daemon {

struct SchedulerOptions {
  Millis lease_ttl_ms = 15'000;     // expiry without heartbeat. Default: 15 s (3 beats of 5 s)
  Millis backoff_base_ms = 1'000;   // first retry delay, doubling. Default: 1 s
  Millis backoff_max_ms = 60'000;   // Default: 60 s
  Millis restart_grace_ms = 30'000; // leases restored at startup live this long. Default: 30 s
};

// One task transition: `before` is the task as last committed (nullopt for
// a new task), `after` what it becomes.
struct TaskChange {
  std::optional<Task> before;
  Task after;
};

// Persists the changes (and whatever the caller adds) atomically.
using CommitFn = std::function<Status(const std::vector<TaskChange>& changes)>;

enum class LeaseCheck { kCurrent, kStale, kUnknown };

struct HeartbeatReply {
  bool cancel = false;              // the worker should stop and fail the task
  Millis lease_expires = 0;
};

enum class CompleteOutcome { kCompleted, kAlreadyDone };

struct TaskCounts {
  std::map<std::pair<std::string, std::string>, int64_t> by_kind_state;  // (kind, state) -> n
};

class Scheduler {
 public:
  Scheduler(const Clock* clock, IdSource* ids, SchedulerOptions opts = {});

  // Loads tasks from the store at startup. Leased tasks keep their lease for
  // restart_grace_ms so live workers can re-attach by heartbeating.
  void Restore(std::vector<Task> tasks, uint64_t next_seq);

  // Queues new tasks (ids and seq assigned here). Returns them as committed.
  Result<std::vector<Task>> Submit(std::vector<Task> tasks, const CommitFn& commit);

  // Leases a task `worker` can run, or nullopt. Waits up to wait_ms (real
  // time) for one to appear; Shutdown() ends the wait.
  Result<std::optional<Task>> Lease(const WorkerInfo& worker, Millis wait_ms,
                                    const CommitFn& commit);

  // Extends the lease. NotFound/FailedPrecondition = lease lost (HTTP 410).
  Result<HeartbeatReply> Heartbeat(const std::string& lease_id, const std::string& progress_json);

  LeaseCheck CheckLease(const std::string& lease_id, Task* out = nullptr) const;

  Result<CompleteOutcome> Complete(const std::string& lease_id, const std::string& result_json,
                                   const CommitFn& commit);
  // retryable=false fails the task at once; otherwise it is retried with
  // backoff while attempts remain.
  Status Fail(const std::string& lease_id, const std::string& error, bool retryable,
              const CommitFn& commit);

  // Expires overdue leases. Returns how many expired.
  Result<int> ExpireLeases(const CommitFn& commit);

  // Cancels queued tasks at once; leased ones get cancel_requested, which
  // the worker sees in its next heartbeat reply.
  Status CancelRun(const std::string& run, const CommitFn& commit);

  // Requeues a failed or cancelled task with extra_attempts more leases.
  Status Retry(const std::string& task_id, int32_t extra_attempts, const CommitFn& commit);

  // A paused run's queued tasks are not leased (running ones finish).
  void SetRunPaused(const std::string& run, bool paused);

  // Drains: no new leases; long polls return empty.
  void Shutdown();

  std::optional<Task> Get(const std::string& task_id) const;
  std::vector<Task> List(const std::function<bool(const Task&)>& filter) const;
  TaskCounts Counts() const;
  uint64_t next_seq() const;
  // Tasks put back in the queue after a failure or an expired lease.
  uint64_t retries() const { return retries_.load(); }
  // Called after every committed transition into a terminal state.
  void SetTerminalListener(std::function<void(const Task&)> fn);

 private:
  Result<std::optional<Task>> TryLeaseLocked(const WorkerInfo& w, const CommitFn& commit);
  Millis Backoff(int attempt) const;
  // Commits `changed`, then installs it in memory; returns the tasks that
  // became terminal so the caller can notify after unlocking.
  Result<std::vector<Task>> CommitLocked(std::vector<Task> changed, const CommitFn& commit);
  void Notify(const std::vector<Task>& terminal);
  Task* ByLeaseLocked(const std::string& lease_id);

  const Clock* clock_;
  IdSource* ids_;
  SchedulerOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  bool shutdown_ = false;
  uint64_t next_seq_ = 1;
  std::map<std::string, Task> tasks_;               // id -> task
  // Queued tasks in lease order: (-priority, seq, id).
  std::set<std::tuple<int32_t, uint64_t, std::string>> queue_;
  std::map<std::string, std::string> lease_index_;  // lease id -> task id (current leases)
  std::map<std::string, std::string> retired_;      // lease id -> task id (ended leases)
  std::function<void(const Task&)> on_terminal_;
  std::set<std::string> paused_runs_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace herd::daemon
