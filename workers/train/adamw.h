#pragma once
// AdamW (Loshchilov & Hutter) over one flat fp32 parameter buffer: Adam with
// bias correction plus decoupled weight decay,
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
// (the same update as torch.optim.AdamW). The moments m and v have the
// parameter buffer's layout, so model::ParamLayout::Views(m()) names them
// for checkpointing optimizer state.
#include <cstdint>
#include <utility>
#include <vector>

namespace herd::train {

struct AdamWOptions {
  float beta1 = 0.9f;         // Default: 0.9
  float beta2 = 0.95f;        // Default: 0.95 (Llama 3)
  float eps = 1e-8f;          // Default: 1e-8
  float weight_decay = 0.1f;  // Default: 0.1 (decoupled; multiplied by lr)
};

class AdamW {
 public:
  // n parameters. no_decay: [offset, offset+len) ranges that get no weight
  // decay (norm weights; see ParamLayout::NoDecayRanges). Allocates m and v
  // once, zeroed.
  AdamW(int64_t n, AdamWOptions options, std::vector<std::pair<int64_t, int64_t>> no_decay = {});

  // One update with learning rate lr (from the schedule). grads is read only.
  void Step(float* params, const float* grads, float lr);

  int64_t num_params() const { return n_; }
  int64_t step() const { return t_; }
  void set_step(int64_t t) { t_ = t; }  // when moments are restored from a checkpoint
  const AdamWOptions& options() const { return opt_; }
  float* m() { return m_.data(); }  // (n) first moment
  float* v() { return v_.data(); }  // (n) second moment

 private:
  int64_t n_;
  AdamWOptions opt_;
  std::vector<float> m_, v_;
  // [begin, end, decay?] spans covering [0, n) in order.
  struct Span {
    int64_t begin, end;
    bool decay;
  };
  std::vector<Span> spans_;
  int64_t t_ = 0;
};

}  // namespace herd::train
