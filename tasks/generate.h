#pragma once
// generate: one response from each of two policies per prompt, the pair a
// human then compares (Llama 3 §4.2.1: two different recent models).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"

namespace herd::tasks {

struct GenerateSpec {
  std::vector<std::string> policies;    // required: two checkpoint directories
  std::vector<std::string> policy_ids;  // their checkpoint ids, same order. Default: none
  std::vector<Prompt> prompts;          // required
  double temperature = 1.0;             // Default: 1.0
  double top_p = 1.0;                   // Default: 1.0 (off)
  int64_t max_new_tokens = 64;          // Default: 64
  int64_t kv_budget_bytes = 64ll << 20; // paged KV pool. Default: 64 MiB
  uint64_t seed = 1;                    // Default: 1
  TextFormat text;                      // the run's overrides. Default: none
  bool operator==(const GenerateSpec&) const = default;
};

struct GenerateResult {
  struct Response {
    std::string prompt_id;  // required: one of the spec's prompts
    std::string a;          // required: policies[0]'s response
    std::string b;          // required: policies[1]'s response
    bool operator==(const Response&) const = default;
  };
  std::vector<Response> responses;  // required
  bool operator==(const GenerateResult&) const = default;
};

std::string Encode(const GenerateSpec& s);
std::string Encode(const GenerateResult& r);
Result<GenerateSpec> DecodeGenerateSpec(const std::string& text);
Result<GenerateSpec> DecodeGenerateSpec(const nlohmann::json& j);
nlohmann::json ToJson(const GenerateSpec& x);
nlohmann::json ToJson(const GenerateResult& x);
Result<GenerateResult> DecodeGenerateResult(const std::string& text);

}  // namespace herd::tasks
