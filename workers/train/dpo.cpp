#include "workers/train/dpo.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>

#include "common/atomic_file.h"
#include "workers/train/losses.h"
#include "workers/train/objective_data.h"

namespace herd::train {
namespace {

// Whether position i's token counts in π (DPO term) and in the NLL.
inline bool InPolicyLogProb(uint8_t f, const DpoOptions& o) {
  return (f & (kDpoChosen | kDpoRejected)) && !(o.mask_formatting && (f & kDpoFormatting));
}
inline bool InNll(uint8_t f, const DpoOptions& o) {
  if (!(f & kDpoChosen)) return false;
  const bool masked = o.mask_formatting && !o.nll_include_formatting;
  return !(masked && (f & kDpoFormatting));
}

Status CheckBatch(const DpoBatch& batch, int64_t V) {
  const int64_t N = batch.batch.size();
  if (static_cast<int64_t>(batch.flags.size()) != N ||
      static_cast<int64_t>(batch.pair_of.size()) != N) {
    return Status::InvalidArgument("DPO batch: flags/pair_of must have B*T = " + std::to_string(N) +
                                   " entries");
  }
  HERD_RETURN_IF_ERROR(CheckTargets(batch.batch.targets, N, V));
  const auto P = static_cast<int32_t>(batch.pair_ids.size());
  for (int64_t i = 0; i < N; ++i) {
    if (batch.flags[i] == 0) continue;
    if (batch.pair_of[i] < 0 || batch.pair_of[i] >= P) {
      return Status::InvalidArgument("DPO batch: pair_of[" + std::to_string(i) + "] outside 0.." +
                                     std::to_string(P - 1));
    }
    if (batch.batch.targets[i] < 0) {
      return Status::InvalidArgument("DPO batch: response position " + std::to_string(i) +
                                     " has no target");
    }
  }
  return Status::Ok();
}

// Token log-probs at every position that any term uses, then per-pair sums.
void ForwardPairs(const DpoBatch& batch, const float* logits, int64_t V, const DpoOptions& opts,
                  DpoWorkspace* ws, bool with_nll) {
  const int64_t N = batch.batch.size();
  const size_t P = batch.pair_ids.size();
  ws->logp.resize(N);
  ws->lse.resize(N);
  ws->active.resize(N);
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t f = batch.flags[i];
    ws->active[i] = InPolicyLogProb(f, opts) || (with_nll && InNll(f, opts));
  }
  TokenLogProbs(logits, N, V, batch.batch.targets, ws->active, ws->logp, ws->lse);
  ws->policy.assign(P, SequenceLogProb{});
  ws->nll_count.assign(P, 0.0);
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t f = batch.flags[i];
    if (!ws->active[i]) continue;
    const int32_t p = batch.pair_of[i];
    if (InPolicyLogProb(f, opts)) {
      (f & kDpoChosen ? ws->policy[p].chosen : ws->policy[p].rejected) += ws->logp[i];
    }
    if (with_nll && InNll(f, opts)) ws->nll_count[p] += 1.0;
  }
}

}  // namespace

Status SequenceLogProbs(const DpoBatch& batch, const float* logits, int64_t V,
                        const DpoOptions& opts, DpoWorkspace* ws,
                        std::vector<SequenceLogProb>* out) {
  HERD_RETURN_IF_ERROR(CheckBatch(batch, V));
  ForwardPairs(batch, logits, V, opts, ws, /*with_nll=*/false);
  *out = ws->policy;
  return Status::Ok();
}

Result<DpoMetrics> DpoLoss(const DpoBatch& batch, const float* logits, int64_t V,
                           std::span<const SequenceLogProb> ref, const DpoOptions& opts,
                           DpoWorkspace* ws, float* dlogits, double grad_scale) {
  HERD_RETURN_IF_ERROR(CheckBatch(batch, V));
  const size_t P = batch.pair_ids.size();
  if (ref.size() != P) {
    return Status::InvalidArgument("DPO reference log-probs: expected " + std::to_string(P) +
                                   " pairs, got " + std::to_string(ref.size()));
  }
  const int64_t N = batch.batch.size();
  ForwardPairs(batch, logits, V, opts, ws, /*with_nll=*/true);

  DpoMetrics m;
  m.pairs = static_cast<int64_t>(P);
  if (P == 0) {
    if (dlogits) std::fill(dlogits, dlogits + N * V, 0.0f);
    return m;
  }
  const double invP = 1.0 / static_cast<double>(P);
  const double gscale = grad_scale * invP;  // ∂(grad_scale · loss)/∂(per-pair term)
  // Per pair: ∂loss/∂π_c = −β σ(−z)/P, ∂loss/∂π_r = +β σ(−z)/P, and each NLL
  // token gets −α/(n_p P). Kept in two small per-pair tables, reused below.
  std::vector<double>& g_pi = ws->pair_grad;
  std::vector<double>& nll_scale = ws->nll_scale;
  std::vector<double>& nll_sum = ws->nll_sum;
  g_pi.assign(P, 0.0);
  nll_scale.assign(P, 0.0);
  nll_sum.assign(P, 0.0);
  for (size_t p = 0; p < P; ++p) {
    const double rc = opts.beta * (ws->policy[p].chosen - ref[p].chosen);
    const double rr = opts.beta * (ws->policy[p].rejected - ref[p].rejected);
    const double z = rc - rr;
    m.dpo_loss += NegLogSigmoid(z);
    m.chosen_reward += rc;
    m.rejected_reward += rr;
    m.reward_accuracy += rc > rr ? 1.0 : 0.0;
    const double n = ws->nll_count[p];
    nll_scale[p] = n > 0 ? 1.0 / n : 0.0;
    g_pi[p] = -opts.beta * Sigmoid(-z) * gscale;
  }
  // The NLL sums are taken in the same pass that writes ∂loss/∂logp.
  ws->dlogp.assign(N, 0.0f);
  for (int64_t i = 0; i < N; ++i) {
    if (!ws->active[i]) continue;
    const uint8_t f = batch.flags[i];
    const int32_t p = batch.pair_of[i];
    double g = 0;
    if (InPolicyLogProb(f, opts)) g += (f & kDpoChosen) ? g_pi[p] : -g_pi[p];
    if (InNll(f, opts)) {
      nll_sum[p] -= ws->logp[i];
      g -= opts.nll_alpha * nll_scale[p] * gscale;
    }
    ws->dlogp[i] = static_cast<float>(g);
  }
  for (size_t p = 0; p < P; ++p) m.nll += nll_sum[p] * nll_scale[p];
  m.dpo_loss *= invP;
  m.nll *= invP;
  m.loss = m.dpo_loss + opts.nll_alpha * m.nll;
  m.chosen_reward *= invP;
  m.rejected_reward *= invP;
  m.margin = m.chosen_reward - m.rejected_reward;
  m.reward_accuracy *= invP;
  if (dlogits) {
    TokenLogProbsBackward(logits, N, V, batch.batch.targets, ws->lse, ws->dlogp, dlogits);
  }
  return m;
}

Status ReferenceLogProbs::Gather(const DpoBatch& batch, std::vector<SequenceLogProb>* out) const {
  out->resize(batch.pair_ids.size());
  for (size_t p = 0; p < batch.pair_ids.size(); ++p) {
    auto it = table_.find(batch.pair_ids[p]);
    if (it == table_.end()) {
      return Status::NotFound("reference log-probs for pair '" + batch.pair_ids[p] +
                              "' (reference model " + model_hash_ + ")");
    }
    (*out)[p] = it->second;
  }
  return Status::Ok();
}

Status ReferenceLogProbs::AddBatch(const DpoBatch& batch, const float* logits, int64_t V,
                                   const DpoOptions& opts, DpoWorkspace* ws) {
  if (opts.mask_formatting != mask_formatting_) {
    return Status::FailedPrecondition("reference log-probs: table was built with mask_formatting=" +
                                      std::string(mask_formatting_ ? "true" : "false") +
                                      ", options say otherwise");
  }
  std::vector<SequenceLogProb> lp;
  HERD_RETURN_IF_ERROR(SequenceLogProbs(batch, logits, V, opts, ws, &lp));
  for (size_t p = 0; p < lp.size(); ++p) Put(batch.pair_ids[p], lp[p]);
  return Status::Ok();
}

Status ReferenceLogProbs::Save(const std::string& path) const {
  nlohmann::json j;
  j["format"] = "herd.dpo_reference.v1";
  j["model_hash"] = model_hash_;
  j["mask_formatting"] = mask_formatting_;
  nlohmann::json pairs = nlohmann::json::object();
  for (const auto& [id, lp] : table_) pairs[id] = {lp.chosen, lp.rejected};
  j["pairs"] = std::move(pairs);
  return WriteFileAtomic(path, j.dump() + "\n");
}

Result<ReferenceLogProbs> ReferenceLogProbs::Load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::NotFound(path + ": cannot open");
  nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::DataLoss(path + ": not valid JSON");
  if (!j.contains("format") || j["format"] != "herd.dpo_reference.v1") {
    return Status::DataLoss(path + ": field 'format' is not herd.dpo_reference.v1");
  }
  if (!j.contains("model_hash") || !j["model_hash"].is_string()) {
    return Status::DataLoss(path + ": field 'model_hash' missing or not a string");
  }
  if (!j.contains("mask_formatting") || !j["mask_formatting"].is_boolean()) {
    return Status::DataLoss(path + ": field 'mask_formatting' missing or not a boolean");
  }
  if (!j.contains("pairs") || !j["pairs"].is_object()) {
    return Status::DataLoss(path + ": field 'pairs' missing or not an object");
  }
  ReferenceLogProbs t(j["model_hash"].get<std::string>(), j["mask_formatting"].get<bool>());
  for (auto it = j["pairs"].begin(); it != j["pairs"].end(); ++it) {
    const auto& v = it.value();
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number()) {
      return Status::DataLoss(path + ": pairs['" + it.key() + "'] is not [chosen, rejected]");
    }
    t.Put(it.key(), {v[0].get<double>(), v[1].get<double>()});
  }
  return t;
}

namespace {

class DpoObjective final : public Objective {
 public:
  DpoObjective(std::vector<DpoSample> s, DpoOptions o, std::shared_ptr<const ReferenceLogProbs> r)
      : data_(std::move(s)), opts_(o), ref_(std::move(r)) {}
  const char* name() const override { return "dpo"; }
  int64_t size() const override { return static_cast<int64_t>(data_.data().size()); }
  void Order(uint64_t seed, int64_t epoch) override { data_.Order(seed, epoch); }
  Result<int64_t> Pack(int64_t cursor, int64_t B, int64_t T) override {
    std::span<const DpoSample> rest(data_.data().data() + cursor, data_.data().size() - cursor);
    return PackDpo(rest, B, T, &batch_);
  }
  double Weight() const override { return static_cast<double>(batch_.pair_ids.size()); }
  const model::PackedBatch& batch() const override { return batch_.batch; }
  Result<BatchResult> LossAndBackward(model::LlamaModel& m, bool backward,
                                      double grad_scale) override {
    if (!m.logits()) return Status::FailedPrecondition("DPO needs a language model (lm_head)");
    if (!ref_) return Status::FailedPrecondition("DPO: no reference log-probs");
    if (ref_->mask_formatting() != opts_.mask_formatting) {
      return Status::FailedPrecondition(
          "DPO: reference log-probs were computed with another "
          "mask_formatting setting");
    }
    HERD_RETURN_IF_ERROR(ref_->Gather(batch_, &ref_lp_));
    const int64_t V = m.config().vocab_size;
    HERD_ASSIGN_OR_RETURN(DpoMetrics dm, DpoLoss(batch_, m.logits(), V, ref_lp_, opts_, &ws_,
                                                 backward ? m.logits() : nullptr, grad_scale));
    if (backward) HERD_RETURN_IF_ERROR(m.Backward(m.logits()));
    BatchResult r;
    r.metrics.Set("loss", dm.loss);
    r.metrics.Set("dpo_loss", dm.dpo_loss);
    r.metrics.Set("nll", dm.nll);
    r.metrics.Set("reward_accuracy", dm.reward_accuracy);
    r.metrics.Set("chosen_reward", dm.chosen_reward);
    r.metrics.Set("rejected_reward", dm.rejected_reward);
    r.metrics.Set("margin", dm.margin);
    r.weight = static_cast<double>(dm.pairs);
    r.tokens = detail::CountTokens(batch_.batch);
    return r;
  }

 private:
  detail::OrderedData<DpoSample> data_;
  DpoOptions opts_;
  std::shared_ptr<const ReferenceLogProbs> ref_;
  DpoBatch batch_;
  DpoWorkspace ws_;
  std::vector<SequenceLogProb> ref_lp_;
};

}  // namespace

std::unique_ptr<Objective> MakeDpoObjective(std::vector<DpoSample> samples, DpoOptions opts,
                                            std::shared_ptr<const ReferenceLogProbs> ref) {
  return std::make_unique<DpoObjective>(std::move(samples), opts, std::move(ref));
}

Result<std::shared_ptr<ReferenceLogProbs>> ReferenceForDpo(model::LlamaModel& ref_model,
                                                           const std::vector<DpoSample>& samples,
                                                           const DpoOptions& opts, int64_t B,
                                                           int64_t T, std::string model_hash) {
  if (!ref_model.logits()) return Status::FailedPrecondition("DPO reference: not a language model");
  if (B > ref_model.max_batch() || T > ref_model.max_seq()) {
    return Status::InvalidArgument("DPO reference: batch " + std::to_string(B) + "x" +
                                   std::to_string(T) + " exceeds the model's activations");
  }
  auto table = std::make_shared<ReferenceLogProbs>(std::move(model_hash), opts.mask_formatting);
  DpoBatch batch;
  DpoWorkspace ws;
  size_t cursor = 0;
  while (cursor < samples.size()) {
    std::span<const DpoSample> rest(samples.data() + cursor, samples.size() - cursor);
    HERD_ASSIGN_OR_RETURN(int64_t n, PackDpo(rest, B, T, &batch));
    if (n == 0) return Status::Internal("DPO reference: packing made no progress");
    HERD_RETURN_IF_ERROR(ref_model.Forward(batch.batch));
    HERD_RETURN_IF_ERROR(
        table->AddBatch(batch, ref_model.logits(), ref_model.config().vocab_size, opts, &ws));
    cursor += static_cast<size_t>(n);
  }
  return table;
}

}  // namespace herd::train
