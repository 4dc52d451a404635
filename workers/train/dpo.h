#pragma once
// DPO objective (Llama 3 §4.1.4) with the NLL regulariser:
//
//   z_p      = β · [(π_c − ref_c) − (π_r − ref_r)]
//   dpo_p    = −log σ(z_p)
//   nll_p    = −(1/n_p) Σ_{k ∈ chosen tokens of p} log π(y_k)
//   loss     = (1/P) Σ_p (dpo_p + α · nll_p)
//
// π_c, π_r are sequence log-probs: sums of token log-probs over the response
// tokens, with formatting tokens left out when mask_formatting is on. The
// NLL averages over the same chosen tokens unless nll_include_formatting.
// docs/objectives.md compares this normalisation with TRL, OpenRLHF and NeMo.
//
// Reference log-probs (ref_c, ref_r) are inputs: the frozen reference model
// runs once per task over the data (SequenceLogProbs), and the results are
// kept in a ReferenceLogProbs table keyed by pair id and tagged with the
// reference model's hash, so a later round can reuse them.
//
// MakeDpoObjective wraps the loss as the trainer's Objective;
// ReferenceForDpo runs the reference model to fill the table.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "workers/model/llama.h"
#include "workers/train/objective.h"
#include "workers/train/row_packing.h"

namespace herd::train {

struct DpoOptions {
  double beta = 0.1;       // β. Default: 0.1 (Llama 3)
  double nll_alpha = 0.2;  // α, weight of the chosen-response NLL. Default: 0.2 (Llama 3)
  // Leave formatting tokens (headers, <|eot_id|>) out of π_c and π_r.
  // Default: true (Llama 3: they push chosen and rejected the same way and
  // destabilise training).
  bool mask_formatting = true;
  // Count formatting tokens in the NLL term even when they are masked out of
  // the DPO term. Default: false (the NLL covers the same tokens as π_c, so
  // the whole loss ignores formatting tokens when masking is on).
  bool nll_include_formatting = false;
};

// Sequence log-probs of one pair under one model.
struct SequenceLogProb {
  double chosen = 0;
  double rejected = 0;
};

struct DpoMetrics {
  double loss = 0;             // mean over pairs of dpo_p + α·nll_p
  double dpo_loss = 0;         // mean over pairs of dpo_p
  double nll = 0;              // mean over pairs of nll_p
  double reward_accuracy = 0;  // fraction of pairs with chosen reward > rejected reward
  double chosen_reward = 0;    // mean of β(π_c − ref_c)
  double rejected_reward = 0;  // mean of β(π_r − ref_r)
  double margin = 0;           // mean of the two rewards' difference
  int64_t pairs = 0;
};

// Scratch for DpoLoss / SequenceLogProbs, grown on first use and then reused,
// so a training step allocates nothing.
struct DpoWorkspace {
  std::vector<float> logp, lse, dlogp;                // (B*T)
  std::vector<uint8_t> active;                        // (B*T)
  std::vector<SequenceLogProb> policy;                // (P)
  std::vector<double> nll_count;                      // (P) tokens in each pair's NLL
  std::vector<double> nll_scale, nll_sum, pair_grad;  // (P)
};

// Sequence log-probs π_c, π_r for every pair of the batch from logits
// (B*T, V); writes out[p] for p < pairs. Used for the reference model.
Status SequenceLogProbs(const DpoBatch& batch, const float* logits, int64_t V,
                        const DpoOptions& opts, DpoWorkspace* ws,
                        std::vector<SequenceLogProb>* out);

// Loss, metrics and dlogits (B*T, V) for a DPO batch. ref[p] are the
// reference's sequence log-probs for pair p (same masking). dlogits may be
// null (evaluation) or alias logits. Positions that are not response
// predictions get zero gradient rows. dlogits is the gradient of
// grad_scale · loss (gradient accumulation passes the batch's pair count,
// so micro-batch gradients add up to the gradient of a sum). Default: 1.
Result<DpoMetrics> DpoLoss(const DpoBatch& batch, const float* logits, int64_t V,
                           std::span<const SequenceLogProb> ref, const DpoOptions& opts,
                           DpoWorkspace* ws, float* dlogits, double grad_scale = 1.0);

// Reference log-probs kept per task. Keyed by pair id; the table records the
// reference model's hash and the masking it was computed with, so a cache
// across rounds can index it by (model hash, pair id) and refuse a table
// computed under other settings.
class ReferenceLogProbs {
 public:
  ReferenceLogProbs(std::string model_hash, bool mask_formatting)
      : model_hash_(std::move(model_hash)), mask_formatting_(mask_formatting) {}
  const std::string& model_hash() const { return model_hash_; }
  bool mask_formatting() const { return mask_formatting_; }
  size_t size() const { return table_.size(); }

  void Put(const std::string& pair_id, SequenceLogProb lp) { table_[pair_id] = lp; }
  // Fills out (one entry per pair of the batch); NotFound names the first
  // missing pair id.
  Status Gather(const DpoBatch& batch, std::vector<SequenceLogProb>* out) const;
  // Adds every pair of the batch from the reference model's logits.
  Status AddBatch(const DpoBatch& batch, const float* logits, int64_t V, const DpoOptions& opts,
                  DpoWorkspace* ws);

  // A JSON file {"format": "herd.dpo_reference.v1", "model_hash",
  // "mask_formatting", "pairs": {pair_id: [chosen, rejected]}}; doubles are
  // written with 17 significant digits, so Load(Save(t)) == t exactly.
  Status Save(const std::string& path) const;
  // DataLoss naming the file and field for a malformed file.
  static Result<ReferenceLogProbs> Load(const std::string& path);

 private:
  std::string model_hash_;
  bool mask_formatting_;
  std::unordered_map<std::string, SequenceLogProb> table_;
};

// DPO on pairs with reference log-probs looked up per pair id. Metrics:
// loss, dpo_loss, nll, reward_accuracy, chosen_reward, rejected_reward,
// margin. ReferenceForDpo fills the table with the frozen reference.
std::unique_ptr<Objective> MakeDpoObjective(std::vector<DpoSample> samples, DpoOptions opts,
                                            std::shared_ptr<const ReferenceLogProbs> ref);

// Runs the reference model once over the samples (in their given order,
// B rows of T per batch) and returns the table DPO trains against.
Result<std::shared_ptr<ReferenceLogProbs>> ReferenceForDpo(model::LlamaModel& ref_model,
                                                           const std::vector<DpoSample>& samples,
                                                           const DpoOptions& opts, int64_t B,
                                                           int64_t T, std::string model_hash);

}  // namespace herd::train
