#pragma once
// What the three training stages (reward_model, sft, dpo) share: each
// variant of the stage's config trains on the stage's dataset as its own
// task; when there are several, an average task merges them (Llama 3
// §4.1.5) and the average is the stage's model. A subclass says what the
// dataset is and which objective trains on it.
#include <optional>

#include "daemon/stages/stage.h"
#include "tasks/average.h"
#include "tasks/train.h"

namespace herd::daemon::stages {

class TrainingStage : public Stage {
 public:
  // train_* and average results become checkpoint records.
  Status Apply(const ApplyEnv& env, stores::WriteTxn& txn, const Task& task) override;
  // Variants done → an average task (or the single variant is the model);
  // average done → the stage's model, the variants deleted unless kept.
  Result<Verdict> Check(RunView& v, const std::vector<Task>& tasks) override;

 protected:
  virtual const StageConfig& Config(const RunConfig& cfg) const = 0;
  // How greedy averaging chooses (reward_model only). Default: none, uniform.
  virtual Result<std::optional<tasks::AverageSelect>> Select(RunView&, const tasks::TrainSpec&) {
    return std::optional<tasks::AverageSelect>();
  }
  // One task per variant of `proto` (the dataset, base, objective fields
  // filled in), each with its own checkpoint and hparams.
  Result<Plan> StartVariants(RunView& v, const char* kind, const tasks::TrainSpec& proto,
                             std::vector<stores::DatasetMember> members);
};

}  // namespace herd::daemon::stages
