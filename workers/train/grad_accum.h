#pragma once
// Gradient accumulation over micro-batches with exact big-batch semantics.
// Each micro-batch backpropagates its *summed* weighted loss (grad scale 1)
// and reports its weight sum (e.g. tokens with loss); Finish() rescales the
// accumulated gradient by 1 / total weight, which is the gradient of the
// weighted-mean loss over all micro-batches together, the same as one
// batch holding every row.
#include <cstdint>

namespace herd::train {

class GradAccumulator {
 public:
  // micro_batches per optimizer step. Default: 1.
  explicit GradAccumulator(int64_t micro_batches = 1)
      : micro_(micro_batches < 1 ? 1 : micro_batches) {}

  // Records a finished micro-batch; true when the step's last one is in.
  bool Add(double weight_sum, double loss_sum) {
    weight_ += weight_sum;
    loss_ += loss_sum;
    return ++seen_ >= micro_;
  }
  // Scales grads(n) by 1/total weight (no-op when it is 0) and returns the
  // step's mean loss; resets for the next step.
  double Finish(float* grads, int64_t n);

  int64_t micro_batches() const { return micro_; }
  int64_t seen() const { return seen_; }
  double weight() const { return weight_; }

 private:
  int64_t micro_;
  int64_t seen_ = 0;
  double weight_ = 0.0, loss_ = 0.0;
};

}  // namespace herd::train
