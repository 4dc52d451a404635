#pragma once
// The orchestrator drives each run through its rounds (Llama 3 §4):
//
//   collect → rm → rejection_sampling → sft → dpo → eval      (× rounds)
//
// Every decision is derived from what is in the store, and every
// transition (a stage starting with its tasks, a task finishing with its
// samples, a stage finishing with its checkpoint) is one synced WriteTxn,
// so killing herdd at any moment and starting it again resumes from the
// last committed transition with nothing lost or done twice.
// docs/orchestrator.md has the stage table.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "daemon/clock.h"
#include "daemon/run_config.h"
#include "daemon/scheduler.h"
#include "daemon/stages/stage.h"
#include "stores/records.h"

namespace herd::stores {
class Store;
class ArtifactStore;
class WriteTxn;
}  // namespace herd::stores

namespace herd::daemon {

inline constexpr const char* kStages[] = {"collect", "rm", "rejection_sampling", "sft", "dpo", "eval"};
inline constexpr int kNumStages = 6;

struct OrchestratorOptions {
  // Task priority: later stages first, so a run finishes before the next
  // starts hogging workers. Default: stage index.
  bool prioritise_later_stages = true;
};

// What an upload did, line by line results are the API's concern.
struct IngestCounts {
  int64_t accepted = 0;
  int64_t duplicates = 0;
};

// A human's answer to an annotation request.
struct Answer {
  std::string choice;                 // "a" | "b"
  std::string strength;               // one of the four levels; "" = run default
  std::optional<std::string> edited;  // corrected version of the chosen response
  std::string annotator;
};

struct RunProgress {
  stores::Run run;
  std::optional<stores::Round> round;  // the current round
  uint64_t disk_bytes = 0;             // checkpoints of the run
};

class Orchestrator {
 public:
  Orchestrator(stores::Store* store, stores::ArtifactStore* artifacts, Scheduler* scheduler,
               const Clock* clock, OrchestratorOptions opts = {});
  ~Orchestrator();

  // Startup: loads every task into the scheduler (leases get a grace window).
  Status Recover();

  // ---- runs ----------------------------------------------------------------
  Result<stores::Run> CreateRun(const std::string& config_json);
  Status StartRun(const std::string& run_id);
  Status PauseRun(const std::string& run_id);
  Status ResumeRun(const std::string& run_id);
  Status CancelRun(const std::string& run_id);
  Status RetryStage(const std::string& run_id, uint32_t round, const std::string& stage);
  // Deletes a finished (or cancelled) run with its records and artifacts.
  Status DeleteRun(const std::string& run_id);
  Result<RunProgress> Progress(const std::string& run_id);

  // ---- data in -------------------------------------------------------------
  // Prompts whose id already exists are counted as duplicates, not rewritten.
  Result<IngestCounts> AddPrompts(const std::string& run_id, std::vector<stores::Prompt> prompts);
  // Normalised annotations (responses best first); each one's implied pairs
  // are stored with it in the same batch, tagged with the run's current round.
  Result<IngestCounts> AddAnnotations(const std::string& run_id,
                                      std::vector<stores::Annotation> annotations);
  Status AnswerRequest(const std::string& run_id, const std::string& request_id, const Answer& a);

  // ---- worker protocol -----------------------------------------------------
  // FailedPrecondition for a worker of another task protocol.
  Result<WorkerInfo> RegisterWorker(WorkerInfo w);
  Result<std::optional<Task>> Lease(const std::string& worker_id, Millis wait_ms);
  Result<HeartbeatReply> Heartbeat(const std::string& lease_id, const std::string& progress_json);
  Result<CompleteOutcome> Complete(const std::string& lease_id, const std::string& result_json);
  Status Fail(const std::string& lease_id, const std::string& error, bool retryable);
  std::vector<WorkerInfo> Workers() const;

  // ---- driving -------------------------------------------------------------
  // Expires leases and advances every running run as far as it can go now.
  Status Tick();
  // Runs Tick() on a thread: every `period_ms` and whenever a task ends.
  void StartBackground(Millis period_ms);
  void StopBackground();
  // Wakes the background thread for an early Tick(). Never blocks, so it
  // can be called with locks held.
  void Kick();

 private:
  struct RunCtx;
  Status AdvanceRun(const std::string& run_id);
  Status StartStage(RunCtx& ctx, stores::Round& round, size_t stage_index);
  Status CheckStage(RunCtx& ctx, stores::Round& round, size_t stage_index, bool* advanced);
  // The checkpoint of this run that failed task t found corrupt, when t
  // failed for that (tasks/protocol.h kCorruptCheckpointPrefix) and it can
  // be avoided (not the base, not already marked).
  std::optional<stores::Checkpoint> CorruptInput(RunCtx& ctx, stores::Round& round, size_t stage_index,
                                                 const Task& t);
  // Marks it corrupt and puts the stage back to pending, in one commit: the
  // stage starts again with RunView::LastGood in its place.
  Status RestartAfterCorrupt(RunCtx& ctx, stores::Round& round, size_t stage_index, const Task& t,
                             stores::Checkpoint corrupt);
  Status FinishStage(RunCtx& ctx, stores::Round& round, size_t stage_index,
                     const std::string& checkpoint_id, const std::string& metrics_json);
  Status FailStage(RunCtx& ctx, stores::Round& round, size_t stage_index, const std::string& why);
  using TxnFill = std::function<Status(stores::WriteTxn& txn)>;
  // Submits tasks; `extra` adds the writes that belong with them (the stage
  // transition) to the same batch.
  Status SubmitTasks(std::vector<Task> tasks, const TxnFill& extra);
  CommitFn TaskCommit(const TxnFill& extra = nullptr);
  // The records a finished task's result turns into (samples, checkpoint,
  // annotation requests), written in the batch that marks it succeeded.
  Status ApplyResult(stores::WriteTxn& txn, const Task& task);
  stages::RunView View(RunCtx& ctx, stores::Round& round, size_t stage_index);
  // Marks the run's pending annotation requests older than its
  // annotation.request_ttl_s "expired" (counter "expired" per round, one
  // event), so the collect stage stops waiting for them.
  Status ExpireRequests(const std::string& run_id);
  // Moves a run from one of `from` to `to`, with an event "run.<event>".
  Status RunTransition(const std::string& run_id, std::initializer_list<const char*> from,
                       const std::string& to, const std::string& event);

  stores::Store* store_;
  stores::ArtifactStore* artifacts_;
  Scheduler* scheduler_;
  const Clock* clock_;
  OrchestratorOptions opts_;
  std::mutex mu_;  // serialises run/round transitions (one writer)
  static constexpr Millis kRequestSweepPeriodMs = 5'000;
  std::atomic<Millis> last_request_sweep_ms_{0};  // Tick's last ExpireRequests pass
  mutable std::mutex workers_mu_;
  std::vector<WorkerInfo> workers_;

  // background ticking
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool bg_stop_ = false;
  bool bg_kicked_ = false;
  std::unique_ptr<std::thread> bg_;
};

// The pairs an annotation implies: edited > responses[0] > responses[1] > …
// (every ordered pair of a ranking). Identical texts give no pair.
std::vector<stores::Pair> ImpliedPairs(const stores::Annotation& a);

}  // namespace herd::daemon
