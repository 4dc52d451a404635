#include "workers/train/sft.h"

#include "workers/train/losses.h"

namespace herd::train {

Result<SftMetrics> SftLoss(const model::PackedBatch& batch, const float* logits, int64_t V,
                           float* dlogits, double normalizer) {
  HERD_ASSIGN_OR_RETURN(CrossEntropyStats ce,
                        CrossEntropy(logits, batch.size(), V, batch.targets, batch.loss_weights,
                                     normalizer, dlogits));
  SftMetrics m;
  m.loss = ce.loss;
  m.tokens = ce.tokens;
  return m;
}

double SftTokenCount(const model::PackedBatch& batch) {
  double n = 0;
  for (int64_t i = 0; i < batch.size(); ++i) {
    if (batch.targets[i] >= 0) n += batch.loss_weights[i];
  }
  return n;
}

}  // namespace herd::train
