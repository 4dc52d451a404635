#include "workers/generate/rejection_sampling.h"

#include <cmath>

namespace herd::generate {

uint64_t PromptSeed(uint64_t run_seed, int64_t prompt_id) {
  return SplitMix64(SplitMix64(run_seed) ^ (static_cast<uint64_t>(prompt_id) + 0x9e3779b97f4a7c15ULL));
}

Result<std::vector<SampleRow>> RejectionSample(Generator& gen, ResponseScorer& scorer,
                                               const std::vector<RejectionPrompt>& prompts,
                                               const RejectionSamplingOptions& o,
                                               const Detokenizer& detokenize) {
  if (gen.queued() != 0)
    return Status::FailedPrecondition("RejectionSample: the generator has " +
                                      std::to_string(gen.queued()) + " requests queued already");
  std::vector<uint64_t> seeds;
  for (const auto& p : prompts) {
    GenerationRequest r;
    r.prompt = p.tokens;
    r.num_samples = o.num_samples;
    r.sampling = o.sampling;
    r.seed = PromptSeed(o.seed, p.prompt_id);
    seeds.push_back(r.seed);
    auto id = gen.Submit(std::move(r));
    if (!id.ok()) {
      gen.ClearQueued();   // run nothing of a batch that cannot run whole
      return id.status().WithContext("prompt " + std::to_string(p.prompt_id));
    }
  }
  HERD_ASSIGN_OR_RETURN(std::vector<GeneratedSample> samples, gen.Run());
  const std::string rm_id = scorer.id();
  std::vector<SampleRow> rows;
  rows.reserve(samples.size());
  const size_t K = static_cast<size_t>(o.num_samples);
  std::vector<std::vector<int32_t>> responses(K);
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (size_t i = 0; i < K; ++i) responses[i] = samples[p * K + i].tokens;
    auto scores = scorer.ScoreResponses(prompts[p].tokens, responses);
    const std::string who = "prompt " + std::to_string(prompts[p].prompt_id);
    if (!scores.ok()) return scores.status().WithContext(who + ": reward model " + rm_id);
    if (scores->size() != K)
      return Status::Internal(who + ": reward model " + rm_id + " returned " +
                              std::to_string(scores->size()) + " scores for " + std::to_string(K) +
                              " responses");
    size_t best = 0;
    for (size_t i = 0; i < K; ++i) {
      if (!std::isfinite((*scores)[i]))
        return Status::InvalidArgument(who + " sample " + std::to_string(i) + ": reward model " +
                                       rm_id + " gave a non-finite score");
      if ((*scores)[i] > (*scores)[best]) best = i;
    }
    for (size_t i = 0; i < K; ++i) {
      GeneratedSample& s = samples[p * K + i];
      SampleRow row;
      row.prompt_id = prompts[p].prompt_id;
      row.idx = s.idx;
      row.policy_id = o.policy_id;
      row.rm_id = rm_id;
      row.temperature = o.sampling.temperature;
      row.top_p = o.sampling.top_p;
      row.top_k = o.sampling.top_k;
      row.seed = seeds[p];
      row.text = detokenize ? detokenize(s.tokens) : std::string();
      row.tokens = std::move(s.tokens);
      row.logprob_sum = s.logprob_sum;
      row.score = (*scores)[i];
      row.selected = i == best;
      row.finish = s.finish;
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

}  // namespace herd::generate
