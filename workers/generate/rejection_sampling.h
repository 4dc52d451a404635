#pragma once
// Rejection sampling (Llama 3 §4.2.2): K responses per prompt from the
// policy, each scored by the reward model, all kept with their scores and the
// best marked. The rows carry what the store's lineage needs (policy, RM,
// sampling settings, seed, index).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/generate/generator.h"

namespace herd::generate {

// The reward model as the sampler sees it. One call per prompt with all of
// its responses, so an implementation can batch them and share the prompt
// (one packed row: prompt segment 0, response i as segment i+1 with parent 0;
// workers/model/packed_batch.h).
class ResponseScorer {
 public:
  virtual ~ResponseScorer() = default;
  // The RM's identity for lineage (checkpoint id).
  virtual std::string id() const = 0;
  // scores (responses.size()), higher is better.
  virtual Result<std::vector<float>> ScoreResponses(
      const std::vector<int32_t>& prompt, const std::vector<std::vector<int32_t>>& responses) = 0;
};

struct RejectionPrompt {
  int64_t prompt_id = 0;          // the store's prompt id
  std::vector<int32_t> tokens;    // chat-formatted prompt, ending in the assistant header
};

struct RejectionSamplingOptions {
  int32_t num_samples = 10;       // K. Default: 10 (paper: 10-30)
  SamplingParams sampling;        // temperature, top-p/k, max_new_tokens, eot_id
  uint64_t seed = 0;              // run seed; prompt p uses PromptSeed(seed, p). Default: 0
  std::string policy_id;          // checkpoint id of the sampling policy
};

// One row of the `samples` table.
struct SampleRow {
  int64_t prompt_id = 0;
  int32_t idx = 0;                // sample index within the prompt, 0..K-1
  std::string policy_id;
  std::string rm_id;
  float temperature = 0;
  float top_p = 1;
  int32_t top_k = 0;
  uint64_t seed = 0;              // the prompt's seed: (seed, idx) reproduces the sample
  std::vector<int32_t> tokens;    // response tokens, <|eot_id|> included when generated
  std::string text;               // detokenized response (empty without a detokenizer)
  double logprob_sum = 0;         // sum of per-token raw model log-probs
  float score = 0;                // reward model score
  bool selected = false;          // best of the prompt's K (ties: lowest idx)
  FinishReason finish = FinishReason::kLength;
};

// The per-prompt seed: splitmix64 of the run seed and the prompt id.
uint64_t PromptSeed(uint64_t run_seed, int64_t prompt_id);

using Detokenizer = std::function<std::string(const std::vector<int32_t>&)>;

// Generates K samples for every prompt (one generator run, continuous
// batching across prompts), scores each prompt's samples in one call, marks
// the best. Rows ordered by (prompt order, idx). Errors: a prompt refused by
// the generator (named), a scorer error (with the prompt id), a scorer
// returning the wrong number of scores or a non-finite score.
Result<std::vector<SampleRow>> RejectionSample(Generator& gen, ResponseScorer& scorer,
                                               const std::vector<RejectionPrompt>& prompts,
                                               const RejectionSamplingOptions& options,
                                               const Detokenizer& detokenize = {});

}  // namespace herd::generate
