#pragma once
// SFT objective: cross-entropy on the tokens the chat format marks as
// trained (assistant content and its <|eot_id|>), as packed by PackSft.
//
//   loss = Σ_i w_i · (−log p(t_i)) / Σ_i w_i        (w_i ∈ {0, 1})
//
// i.e. the mean over the trained tokens of the batch, not a mean of
// per-conversation means: a long answer weighs in proportion to its length,
// and packing several conversations in a row does not change the loss.
// With gradient accumulation the trainer passes the token count of the
// whole accumulated batch as `normalizer`, so the sum over micro-batches is
// the same mean.
//
// MakeSftObjective wraps it as the trainer's Objective (objective.h).
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "workers/model/packed_batch.h"
#include "workers/train/objective.h"
#include "workers/train/row_packing.h"

namespace herd::train {

struct SftMetrics {
  double loss = 0;     // mean −log p over trained tokens
  int64_t tokens = 0;  // trained tokens in the batch
};

// logits (B*T, V); dlogits (B*T, V) may be null or alias logits.
// normalizer <= 0: this batch's trained-token count. Default: 0.
Result<SftMetrics> SftLoss(const model::PackedBatch& batch, const float* logits, int64_t V,
                           float* dlogits, double normalizer = 0);

// Trained tokens of a batch (Σ loss_weights over positions with a target).
double SftTokenCount(const model::PackedBatch& batch);

// SFT on tokenized conversations (row_packing.h SftExample).
std::unique_ptr<Objective> MakeSftObjective(std::vector<SftExample> examples,
                                            SftPackOptions pack = {});

}  // namespace herd::train
