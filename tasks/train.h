#pragma once
// train_rm, train_sft, train_dpo: one variant of a training stage (Llama 3
// §4.1.2–4.1.4). The worker starts from `base`, trains on the JSONL at
// `dataset` (rows in datasets.h) and writes an HF checkpoint to `out`.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"
#include "tasks/train_defaults.h"

namespace herd::tasks {

// Hyperparameters of one training run. The run config's stages, the task
// spec and the worker's trainer all take their defaults from here.
struct TrainHparams {
  double lr = 1e-5;                 // peak learning rate. Default: 1e-5 (paper: SFT and DPO)
  double min_lr_ratio = 0.1;        // decay floor as a fraction of lr. Default: 0.1
  int64_t warmup_steps = 0;         // Default: 0
  int64_t steps = 100;              // optimizer steps. Default: 100
  int64_t batch_rows = kDefaultBatchRows;  // Default: 8
  int64_t seq_len = kDefaultSeqLen;        // Default: 512
  double weight_decay = 0.0;        // AdamW decoupled decay. Default: 0
  double grad_clip = 1.0;           // global-norm clip, 0 = off. Default: 1.0
  int64_t seed = kDefaultSeed;             // Default: 1
  std::string schedule = "cosine";  // "cosine" | "linear". Default: cosine
  bool operator==(const TrainHparams&) const = default;
};

struct TrainSpec {
  std::string base;                 // required: HF checkpoint directory to start from
  std::string dataset;              // required: JSONL of PairRow (rm, dpo) or ConversationRow (sft)
  std::string out;                  // required: the checkpoint directory to write
  std::string checkpoint_id;        // required: herdd's id for `out`
  std::string variant;              // the stage variant's name. Default: ""
  TrainHparams hparams;
  TextFormat text;                  // the run's tokenizer / chat format overrides. Default: none
  std::vector<std::string> parents;   // lineage: checkpoint ids trained from. Default: none
  std::vector<std::string> datasets;  // lineage: dataset names ("rm:r2"). Default: none
  // Pairs of these strengths are used (train_rm, train_dpo). Default: significantly_better, better
  std::vector<std::string> strengths = DefaultTrainedStrengths();
  // train_rm only.
  bool margin = false;              // Llama 2 margin per strength. Default: false
  std::string heldout;              // JSONL of PairRow for held-out accuracy. Default: "" (none)
  // train_dpo only.
  std::string ref;                  // required for train_dpo: the frozen reference checkpoint
  double beta = 0.1;                // Default: 0.1 (paper)
  double nll_alpha = 0.2;           // NLL weight on the chosen response. Default: 0.2 (paper)
  bool mask_formatting = true;      // mask header/eot tokens from log-probs. Default: true (paper)
  bool operator==(const TrainSpec&) const = default;
};

struct TrainResult {
  CheckpointInfo checkpoint;        // required
  // Free-form figures for people (loss, accuracy, tokens_per_s, eval: {…});
  // herdd averages the numeric ones over a stage's variants. Default: {}
  nlohmann::json metrics = nlohmann::json::object();
};

// Range-checked hparams fields into `hp` (no unknown-field check: callers
// mix them with their own fields); and the JSON of every field.
void ReadHparams(FieldReader& r, TrainHparams* hp);
nlohmann::json ToJson(const TrainHparams& h);

std::string Encode(const TrainSpec& s);
std::string Encode(const TrainResult& r);
Result<TrainSpec> DecodeTrainSpec(const std::string& text);
Result<TrainSpec> DecodeTrainSpec(const nlohmann::json& j);
nlohmann::json ToJson(const TrainSpec& x);
nlohmann::json ToJson(const TrainResult& x);
Result<TrainResult> DecodeTrainResult(const std::string& text);

}  // namespace herd::tasks
