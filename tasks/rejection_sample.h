#pragma once
// rejection_sample: K samples per prompt from the policy, each scored by
// the reward model (Llama 3 §4.2.2); herdd marks each prompt's best.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"

namespace herd::tasks {

struct RejectionSampleSpec {
  std::string policy;                   // required: checkpoint directory to sample
  std::string policy_id;                // its checkpoint id. Default: ""
  std::string rm;                       // required: reward model checkpoint directory
  std::string rm_id;                    // its checkpoint id. Default: ""
  std::vector<Prompt> prompts;          // required
  int64_t k = 10;                       // samples per prompt. Default: 10 (paper: 10–30)
  double temperature = 0.7;             // Default: 0.7
  double top_p = 1.0;                   // Default: 1.0 (off)
  int64_t top_k = 0;                    // 0 = off. Default: 0
  int64_t max_new_tokens = 64;          // Default: 64
  int64_t kv_budget_bytes = 256ll << 20;  // paged KV pool. Default: 256 MiB
  uint64_t seed = 1;                    // Default: 1
  TextFormat text;                      // the run's overrides. Default: none
  bool operator==(const RejectionSampleSpec&) const = default;
};

struct RejectionSampleResult {
  struct Sample {
    std::string prompt_id;              // required: one of the spec's prompts
    uint32_t idx = 0;                   // required: 0..k-1
    std::vector<int32_t> tokens;        // required: the response's token ids
    std::string text;                   // required: the response decoded
    double logprob = 0;                 // sum of the tokens' log-probs. Default: 0
    std::optional<double> rm_score;     // the reward model's score. Default: none
    uint64_t seed = 0;                  // the sample's own seed. Default: 0
    bool operator==(const Sample&) const = default;
  };
  std::vector<Sample> samples;          // required
  nlohmann::json metrics = nlohmann::json::object();  // tokens, tokens_per_s. Default: {}
};

std::string Encode(const RejectionSampleSpec& s);
std::string Encode(const RejectionSampleResult& r);
Result<RejectionSampleSpec> DecodeRejectionSampleSpec(const std::string& text);
Result<RejectionSampleSpec> DecodeRejectionSampleSpec(const nlohmann::json& j);
nlohmann::json ToJson(const RejectionSampleSpec& x);
nlohmann::json ToJson(const RejectionSampleResult& x);
Result<RejectionSampleResult> DecodeRejectionSampleResult(const std::string& text);

}  // namespace herd::tasks
