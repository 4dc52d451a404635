#include "workers/train/grad_accum.h"

#include "kernels/cpu/elementwise.h"

namespace herd::train {

double GradAccumulator::Finish(float* grads, int64_t n) {
  double mean = 0.0;
  if (weight_ > 0.0) {
    kernels::cpu::Scale(grads, static_cast<float>(1.0 / weight_), n);
    mean = loss_ / weight_;
  }
  seen_ = 0;
  weight_ = 0.0;
  loss_ = 0.0;
  return mean;
}

}  // namespace herd::train
