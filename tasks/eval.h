#pragma once
// eval: the round's policy on the eval prompts, greedy and sampled, against
// the previous round's policy and the base (checker accuracy, RM score, win
// rate), and the reward model's held-out pair accuracy.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"

namespace herd::tasks {

struct EvalSpec {
  std::string policy;                   // required: the checkpoint under test
  std::string previous;                 // the previous round's policy. Default: "" (none)
  std::string base;                     // the pre-trained model. Default: "" (none)
  std::string rm;                       // reward model. Default: "" (no RM figures)
  std::string rm_heldout;               // JSONL of PairRow for RM accuracy. Default: "" (none)
  std::vector<Prompt> prompts;          // required
  std::string checker;                  // verifier name (workers/runtime/checkers.h). Default: "" (none)
  int64_t samples_per_prompt = 1;       // sampled draws besides greedy. Default: 1
  int64_t max_new_tokens = 64;          // Default: 64
  double temperature = 0.7;             // of the sampled draws. Default: 0.7
  int64_t kv_budget_bytes = 64ll << 20; // paged KV pool. Default: 64 MiB
  uint64_t seed = 1;                    // Default: 1
  TextFormat text;                      // the run's overrides. Default: none
  bool operator==(const EvalSpec&) const = default;
};

struct EvalResult {
  // accuracy_greedy, accuracy_sampled, rm_score_greedy, rm_heldout_accuracy,
  // win_rate_vs_previous, … (docs/tasks.md). Default: {}
  nlohmann::json metrics = nlohmann::json::object();
};

std::string Encode(const EvalSpec& s);
std::string Encode(const EvalResult& r);
Result<EvalSpec> DecodeEvalSpec(const std::string& text);
Result<EvalSpec> DecodeEvalSpec(const nlohmann::json& j);
nlohmann::json ToJson(const EvalSpec& x);
nlohmann::json ToJson(const EvalResult& x);
Result<EvalResult> DecodeEvalResult(const std::string& text);

}  // namespace herd::tasks
