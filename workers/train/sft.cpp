#include "workers/train/sft.h"

#include <span>
#include <utility>

#include "workers/train/losses.h"
#include "workers/train/objective_data.h"

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

namespace {

class SftObjective final : public Objective {
 public:
  SftObjective(std::vector<SftExample> ex, SftPackOptions p) : data_(std::move(ex)), pack_(p) {}
  const char* name() const override { return "sft"; }
  int64_t size() const override { return static_cast<int64_t>(data_.data().size()); }
  void Order(uint64_t seed, int64_t epoch) override { data_.Order(seed, epoch); }
  Result<int64_t> Pack(int64_t cursor, int64_t B, int64_t T) override {
    std::span<const SftExample> rest(data_.data().data() + cursor, data_.data().size() - cursor);
    return PackSft(rest, B, T, pack_, &batch_);
  }
  double Weight() const override { return SftTokenCount(batch_); }
  const model::PackedBatch& batch() const override { return batch_; }
  Result<BatchResult> LossAndBackward(model::LlamaModel& m, bool backward,
                                      double grad_scale) override {
    if (!m.logits()) return Status::FailedPrecondition("SFT needs a language model (lm_head)");
    const int64_t V = m.config().vocab_size;
    // Gradient of grad_scale · (Σ w·ce / Σ w): normaliser Σ w / grad_scale.
    const double norm = grad_scale == 1.0 ? 0.0 : SftTokenCount(batch_) / grad_scale;
    HERD_ASSIGN_OR_RETURN(SftMetrics sm,
                          SftLoss(batch_, m.logits(), V, backward ? m.logits() : nullptr, norm));
    if (norm > 0) sm.loss /= grad_scale;  // report the batch mean whatever the scale
    if (backward) HERD_RETURN_IF_ERROR(m.Backward(m.logits()));
    BatchResult r;
    r.metrics.Set("loss", sm.loss);
    r.weight = static_cast<double>(sm.tokens);
    r.tokens = detail::CountTokens(batch_);
    return r;
  }

 private:
  detail::OrderedData<SftExample> data_;
  SftPackOptions pack_;
  model::PackedBatch batch_;
};

}  // namespace

std::unique_ptr<Objective> MakeSftObjective(std::vector<SftExample> examples, SftPackOptions pack) {
  return std::make_unique<SftObjective>(std::move(examples), pack);
}

}  // namespace herd::train
