#pragma once
// A run's configuration: what herdd needs to drive the six rounds of the
// Llama 3 post-training loop. Parsed from JSON (configs/*.json, POST
// /v1/runs); every error names the field path, e.g. "dpo.variants[1].lr".
// Each field's default is written next to it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"
#include "tasks/train.h"

namespace herd::daemon {

// Hyperparameters shared by the three training stages: the task contract's
// (tasks/train.h), where each default is written. A stage's `variants`
// override any of these per variant; the variants are trained separately
// and their weights averaged (Llama 3 §4.1.5).
using TrainHparams = tasks::TrainHparams;

struct Variant {
  std::string name;               // Default: "v<index>"
  TrainHparams hp;                // the stage's hparams with this variant's overrides applied
};

struct StageConfig {
  TrainHparams hp;
  std::vector<Variant> variants;  // Default: one variant, the stage's hparams
  std::vector<double> average_weights;  // Default: uniform over the variants
  // How the variants become the stage's model: "uniform" averages them all
  // with average_weights; "greedy" (reward_model only) adds them one by one,
  // best first, keeping each only if the average's accuracy on validation
  // pairs does not drop ("greedy soup"). Default: uniform
  std::string averaging = "uniform";
};

struct RewardModelConfig : StageConfig {
  // Strengths whose pairs train the RM. Default: significantly_better, better (paper)
  std::vector<std::string> strengths = tasks::DefaultTrainedStrengths();
  bool margin = false;            // Llama 2 style margin per strength. Default: false
  double held_out_fraction = 0.1; // of pairs kept for RM accuracy. Default: 0.1
  // Of pairs kept aside to choose the greedy average; used (and taken from
  // the training pairs) only when averaging is "greedy". Default: 0.1
  double val_fraction = 0.1;
  // Where each round's RM variants start: "base" (the pre-trained
  // checkpoint, every round) or "previous" (round r > 1 continues from round
  // r-1's RM, on all pairs so far). Default: base
  std::string init = "base";
};

struct DpoConfig : StageConfig {
  // false skips DPO: the round's SFT model is its policy (an ablation).
  bool enabled = true;            // Default: true
  double beta = 0.1;              // Default: 0.1 (paper)
  double nll_alpha = 0.2;         // weight of NLL on the chosen response. Default: 0.2 (paper)
  bool mask_formatting = true;    // mask header/eot tokens from log-probs. Default: true (paper)
  std::vector<std::string> strengths = tasks::DefaultTrainedStrengths();
  int64_t recent_rounds = 1;      // train on pairs of the latest N rounds. Default: 1
};

struct SamplingConfig {
  // false skips rejection sampling and SFT: DPO then starts from the
  // previous round's policy, which is also its reference (an ablation).
  bool enabled = true;            // Default: true
  int64_t k = 10;                 // samples per prompt, 1..64. Default: 10 (paper: 10–30)
  double temperature = 0.7;       // Default: 0.7
  double top_p = 0.9;             // Default: 0.9
  int64_t top_k = 0;              // 0 = off. Default: 0
  int64_t max_new_tokens = 256;   // Default: 256
  int64_t prompts_per_round = 0;  // 0 = every train prompt. Default: 0
  int64_t prompts_per_task = 16;  // shard size of a rejection_sample task. Default: 16
  int64_t kv_budget_bytes = 256ll << 20;  // paged KV pool per worker. Default: 256 MiB
};

struct AnnotationPolicy {
  // Annotation requests issued per round, one per train prompt; beyond the
  // number of train prompts the prompts come round again. Default: 64
  int64_t comparisons_per_round = 64;
  int64_t min_answers = 48;       // answers awaited before the round's RM trains. Default: 48
  std::string default_strength = "better";  // for uploads without one. Default: better
  double temperature = 0.9;       // sampling for the two shown responses. Default: 0.9
  int64_t max_new_tokens = 256;   // Default: 256
  // A request nobody answered in this many seconds expires: it can no
  // longer be answered, and the round stops waiting for it (the collect
  // stage then needs min_answers of the requests still open or answered).
  // 0 = never. Default: 604800 (a week)
  int64_t request_ttl_s = 7 * 24 * 3600;
};

struct EvalConfig {
  int64_t prompts = 0;            // eval prompts used, 0 = all. Default: 0
  int64_t samples_per_prompt = 1; // sampled eval draws besides greedy. Default: 1
  // Verifier the worker scores eval responses with ("" = none: RM score and
  // win rate by the RM only; "arithmetic" = the demo task). Default: ""
  std::string checker;
};

using WorkerRequirements = tasks::Requirements;  // tasks/common.h

struct RetentionConfig {
  bool keep_variants = false;     // keep variant checkpoints after averaging. Default: false
};

struct RunConfig {
  std::string name;               // required, [A-Za-z0-9._-]{1,64}
  std::string base_checkpoint;    // required: HF directory of the pre-trained model
  // A tokenizer.json (or a directory with one) to use instead of the base
  // checkpoint's. Default: "" (base_checkpoint's tokenizer.json)
  std::string tokenizer;
  // "llama3" | "chatml": the chat format, instead of the one detected from
  // the base checkpoint's chat template. Default: "" (detected)
  std::string chat_format;
  int64_t rounds = 6;             // Default: 6 (paper)
  int64_t max_attempts = 3;       // per task before the stage fails. Default: 3
  RewardModelConfig reward_model;
  SamplingConfig rejection_sampling;
  StageConfig sft;
  DpoConfig dpo;
  AnnotationPolicy annotation;
  EvalConfig eval;
  WorkerRequirements workers;
  RetentionConfig retention;
};

// Parses and validates. Unknown fields are errors too (a typo must not be
// silently ignored): "rejection_sampling.temprature: unknown field".
Result<RunConfig> ParseRunConfig(const std::string& json_text);

// Canonical JSON of a config (all defaults filled in), stored with the run.
std::string RunConfigToJson(const RunConfig& c);

}  // namespace herd::daemon
