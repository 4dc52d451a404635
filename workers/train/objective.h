#pragma once
// The interface the trainer drives (trainer.h): an objective owns its
// examples and its packed batch, and supplies the loss and the gradient at
// the model's head. The objectives themselves are in sft.h, reward.h and
// dpo.h (MakeSftObjective, MakeRewardObjective, MakeDpoObjective).
#include <array>
#include <cstdint>

#include "common/status.h"
#include "workers/model/llama.h"
#include "workers/model/packed_batch.h"

namespace herd::train {

// Up to 8 named scalars, without allocation.
struct Metrics {
  struct Entry {
    const char* name = "";
    double value = 0;
  };
  std::array<Entry, 8> entries{};
  int count = 0;
  void Set(const char* name, double v);
  double Get(const char* name, double fallback = 0) const;
};

// What one batch produced: its metrics (means over the batch) and the
// weight (tokens or pairs) the trainer uses to average metrics across
// batches in evaluation.
struct BatchResult {
  Metrics metrics;  // always includes "loss"
  double weight = 0;
  int64_t tokens = 0;  // non-padding tokens in the batch (for tokens/s)
};

class Objective {
 public:
  virtual ~Objective() = default;
  virtual const char* name() const = 0;  // "sft" | "rm" | "dpo"
  virtual int64_t size() const = 0;      // examples
  // Puts the examples in the order for `epoch` from the original order
  // (seeded, reproducible on resume).
  virtual void Order(uint64_t seed, int64_t epoch) = 0;
  // Packs examples [cursor, ...) into the objective's batch; returns how
  // many were consumed (> 0 unless cursor == size()).
  virtual Result<int64_t> Pack(int64_t cursor, int64_t B, int64_t T) = 0;
  // What the last packed batch's loss is a mean over: trained tokens (SFT)
  // or pairs (RM, DPO). 0 = nothing to train on.
  virtual double Weight() const = 0;
  bool HasLoss() const { return Weight() > 0; }
  virtual const model::PackedBatch& batch() const = 0;
  // After a Forward of batch(): loss and metrics; with backward, writes the
  // gradient of grad_scale · loss at the head and runs the model's backward
  // (grads +=). Gradient accumulation passes grad_scale = Weight().
  virtual Result<BatchResult> LossAndBackward(model::LlamaModel& m, bool backward,
                                              double grad_scale = 1.0) = 0;
};

}  // namespace herd::train
