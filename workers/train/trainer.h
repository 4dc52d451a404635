#pragma once
// One training loop for SFT, reward-model and DPO training. The objective
// (objective.h; the three are made in sft.h, reward.h and dpo.h)
// owns its examples and its packed batch, and supplies the loss and the
// gradient at the model's head; the trainer owns the order of the data, the
// optimizer, the schedule, evaluation, checkpoints and progress reports.
//
// Step:  per micro-batch: objective.Pack(cursor) → model.Forward →
//        objective.LossAndBackward (head gradient + model backward, grads +=);
//        then clip → AdamW(lr(step)).
// Data:  each epoch the objective's examples are put in a seeded order
//        (seed, epoch); a step packs up to batch_rows rows of seq_len from
//        the cursor. The data position is (epoch, cursor).
// State: a training checkpoint is <checkpoint_dir>/step-<N>/ holding the
//        model as an HF checkpoint, optimizer.safetensors (AdamW moments,
//        named "<tensor>.exp_avg" / "<tensor>.exp_avg_sq") and
//        trainer_state.json (step, epoch, cursor, seed, optimizer step),
//        written last so a directory without it is incomplete and ignored.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "tasks/train_defaults.h"
#include "workers/model/llama.h"
#include "workers/train/adamw.h"
#include "workers/train/lr_schedule.h"
#include "workers/train/objective.h"

namespace herd::train {

struct TrainerOptions {
  int64_t steps = 100;     // optimizer steps. Default: 100
  // B and T; their defaults are the task contract's (tasks/train_defaults.h).
  int64_t batch_rows = tasks::kDefaultBatchRows;  // B. Default: 8
  int64_t seq_len = tasks::kDefaultSeqLen;        // T. Default: 512
  // Micro-batches of batch_rows x seq_len per optimizer step; the gradient
  // is that of the loss averaged over all their tokens (SFT) or pairs
  // (RM, DPO) together, as one big batch. Default: 1
  int64_t micro_batches = 1;
  LrScheduleOptions lr;        // Default: see lr_schedule.h; total_steps is set to `steps`
  AdamWOptions adamw;          // Default: see adamw.h
  double grad_clip = 1.0;      // global-norm clip; 0 = off. Default: 1.0
  uint64_t seed = tasks::kDefaultSeed;  // data order. Default: 1
  int64_t eval_every = 0;      // steps between evaluations; 0 = only at the end. Default: 0
  int64_t save_every = 0;      // steps between training checkpoints; 0 = none. Default: 0
  std::string checkpoint_dir;  // where step-<N>/ go. Default: "" (no checkpoints)
};

struct Progress {
  int64_t step = 0;  // optimizer steps done
  int64_t total_steps = 0;
  int64_t epoch = 0;
  double lr = 0;
  double grad_norm = 0;     // before clipping
  double tokens_per_s = 0;  // this step's non-padding tokens / its wall time
  bool is_eval = false;     // metrics are an evaluation over the eval set
  Metrics metrics;
};
// Forward-only pass of a model over every example of an objective, packed
// B rows of T: weighted means of the batch metrics, plus "examples" (the
// total weight: tokens for SFT, pairs for RM and DPO). Trainer::Evaluate and
// the greedy averaging of checkpoints (train_handlers.cpp) both use it.
Result<Metrics> EvaluateObjective(model::LlamaModel& m, Objective& obj, int64_t B, int64_t T);

// Return false to stop training (cancellation); Run then returns Aborted.
using ProgressFn = std::function<bool(const Progress&)>;

class Trainer {
 public:
  // eval may be null. The model's max_batch/max_seq must cover
  // batch_rows/seq_len. Errors name the option.
  static Result<std::unique_ptr<Trainer>> Create(model::LlamaModel* model, Objective* train,
                                                 Objective* eval, TrainerOptions opts);

  // Trains until opts.steps (from the current step, so after Resume it
  // continues), evaluating and saving as configured; a final evaluation
  // runs at the end when there is an eval set.
  Status Run(const ProgressFn& progress = {});
  // Forward-only pass over the eval objective: weighted means of metrics.
  Result<Metrics> Evaluate();

  Status SaveState(const std::string& dir);
  // Restores model, optimizer and data position from a SaveState dir.
  Status LoadState(const std::string& dir);
  // The newest complete step-<N> under checkpoint_dir, if any; NotFound otherwise.
  Result<std::string> LatestCheckpoint() const;

  int64_t step() const { return step_; }
  int64_t epoch() const { return epoch_; }
  int64_t cursor() const { return cursor_; }
  AdamW& optimizer() { return *adamw_; }

 private:
  Trainer(model::LlamaModel* m, Objective* t, Objective* e, TrainerOptions o, LrSchedule lr);
  // Packs the next batch with something to train on (advancing epochs).
  Status PackNextTrainBatch();

  model::LlamaModel* model_;
  Objective* train_;
  Objective* eval_;
  TrainerOptions opts_;
  LrSchedule lr_;
  std::unique_ptr<AdamW> adamw_;
  int64_t step_ = 0, epoch_ = 0, cursor_ = 0;
};

}  // namespace herd::train
