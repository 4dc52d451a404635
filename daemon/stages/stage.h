#pragma once
// One stage of a round of the Llama 3 post-training loop (§4):
//
//   collect → reward_model → rejection_sampling → sft → dpo → eval
//
// Each stage is one file here implementing Stage: Start (which tasks to
// create, or finish at once), Apply (a task's result → records, in the
// batch that marks the task succeeded) and Check (is it done, and what did
// it choose). The orchestrator owns the loop, the transactions and
// recovery; a stage only decides. Specs and results are the structs of
// tasks/, never JSON written here.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/clock.h"
#include "daemon/run_config.h"
#include "daemon/task.h"
#include "stores/records.h"
#include "tasks/common.h"
#include "tasks/datasets.h"

namespace herd::stores {
class Store;
class ArtifactStore;
class WriteTxn;
}  // namespace herd::stores

namespace herd::daemon::stages {

// A stage's place in the round; stores::Round::stages is in this order.
enum StageIndex : size_t { kCollect = 0, kRm, kRs, kSft, kDpo, kEval };

// What a stage sees of its run while it starts or checks.
struct RunView {
  stores::Run& run;
  const RunConfig& cfg;
  const std::string& base_checkpoint_id;
  stores::Round& round;
  stores::Store* store;
  stores::ArtifactStore* artifacts;
  Millis now;
  int32_t priority;  // of the tasks this stage creates

  uint32_t r() const { return round.round; }
  // Seeds every choice of this round: "<run>/r<N>".
  std::string Salt() const;
  // The policy of round rr: its DPO model, or the base for rr = 0. When
  // that checkpoint was found corrupt, the last good one before it: the
  // round's SFT model, else the policy of round rr - 1.
  Result<std::string> PolicyOf(uint32_t rr) const;
  // The checkpoint a stage of this round chose.
  const std::string& ChosenBy(StageIndex i) const { return round.stages[i].checkpoint_id; }
  // What a stage of this round chose, or the last good checkpoint in its
  // place when that one was found corrupt: for kSft the previous policy,
  // for kDpo LastGood(kSft), for kRm the newest good RM of an earlier
  // round (NotFound when there is none).
  Result<std::string> LastGood(StageIndex i) const;
  // Whether a task found the checkpoint corrupt (Checkpoint::corrupt).
  bool Corrupt(const std::string& checkpoint_id) const;
  // The first good checkpoint that `stages` (in that order) chose in
  // rounds rr, rr - 1, ..., 1; none when there is none.
  Result<std::optional<std::string>> NewestGood(uint32_t rr, std::initializer_list<StageIndex> stages) const;
  // A checkpoint's directory: the user's base model, or under the artifact root.
  Result<std::string> PathOf(const std::string& checkpoint_id) const;
  // A new checkpoint id and its empty directory.
  Result<std::pair<std::string, std::string>> NewCheckpoint() const;
  // A dataset file of this run: "<stage>-r<N>" etc.
  Result<std::string> DatasetPath(const std::string& name) const;
  // The run's tokenizer / chat format overrides, for every task that
  // formats chat (empty: each checkpoint's own).
  tasks::TextFormat Text() const { return {cfg.tokenizer, cfg.chat_format}; }
  // A task of this stage (kind, encoded spec) with the run's requirements.
  Task NewTask(const char* stage, const char* kind, std::string spec) const;
};

// What Start decided.
struct Plan {
  enum class Kind { kTasks, kFinished, kFailed };
  Kind kind = Kind::kTasks;
  std::vector<Task> tasks;                      // kTasks
  std::vector<stores::DatasetMember> members;   // kTasks: what the stage's datasets hold
  std::string checkpoint_id;                    // kFinished: the stage's choice ("" = none)
  std::string metrics_json = "{}";              // kFinished
  std::string error;                            // kFailed

  static Plan Finished(std::string checkpoint_id, std::string metrics_json);
  static Plan Failed(std::string why);
};

// What Check decided.
struct Verdict {
  enum class Kind { kWaiting, kFinished, kMoreTasks };
  Kind kind = Kind::kWaiting;
  std::string checkpoint_id;     // kFinished
  std::string metrics_json = "{}";
  std::vector<Task> tasks;       // kMoreTasks: submitted with the round

  static Verdict Waiting() { return {}; }
  static Verdict Finished(std::string checkpoint_id, std::string metrics_json);
  static Verdict More(std::vector<Task> tasks);
};

// What Apply may use besides the task.
struct ApplyEnv {
  stores::Store* store;  // for new ids only: reads belong in Start/Check
  Millis now;
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  virtual Result<Plan> Start(RunView& v) = 0;
  // The records a succeeded task's result turns into; InvalidArgument for a
  // result that does not fit the task (the completion is then refused).
  virtual Status Apply(const ApplyEnv& env, stores::WriteTxn& txn, const Task& task) = 0;
  // Called while the stage runs, once none of its tasks failed; `tasks` are
  // all of them (the orchestrator has already counted the done ones).
  virtual Result<Verdict> Check(RunView& v, const std::vector<Task>& tasks) = 0;
};

// The loop, in order; Loop()[i]->name() is kStages[i].
const std::vector<Stage*>& Loop();
// The stage named `name`, or null.
Stage* Find(const std::string& name);

// ---- shared by the stages ----------------------------------------------------

// A stable 64-bit hash for seeded choices and held-out splits.
uint64_t Hash64(const std::string& s);

// A seeded selection of n prompts of a split (0 = all). With `repeat`, n
// may exceed the split: the prompts come round again, each pass in its own
// seeded order.
Result<std::vector<stores::Prompt>> SelectPrompts(stores::Store* store, const std::string& run,
                                                  const std::string& split, int64_t n,
                                                  const std::string& salt, bool repeat = false);

// Prompts [begin, end) as the tasks' prompts.
std::vector<tasks::Prompt> TaskPrompts(const std::vector<stores::Prompt>& ps, size_t begin, size_t end);
std::vector<tasks::Message> TaskMessages(const std::vector<stores::Message>& ms);
// A stored preference pair as a dataset row.
tasks::PairRow PairRowOf(const stores::Pair& p);

// Writes a dataset file whole and durably (one line per row, through
// WriteFileAtomic) before the stage's tasks are submitted.
Status WriteDataset(const std::string& path, const std::vector<std::string>& lines);

// The round's held-out preference pairs: the RM's accuracy set, which eval
// scores the RM on too (defined in reward_model.cpp).
Result<std::string> RmHeldoutPath(const RunView& v);

// The store counter of a round's "requests" made or "answers" received.
std::string CounterKey(const char* what, const std::string& run, uint32_t round);

// "result of <kind> task <id>: <what>".
Status BadResult(const Task& t, const std::string& what);

}  // namespace herd::daemon::stages
