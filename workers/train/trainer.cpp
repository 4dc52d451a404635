#include "workers/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

#include "common/atomic_file.h"
#include "workers/model/checkpoint.h"
#include "workers/model/safetensors.h"
#include "workers/train/grad_accum.h"
#include "workers/train/grad_clip.h"
#include "workers/train/sft.h"

namespace herd::train {
namespace fs = std::filesystem;

void Metrics::Set(const char* name, double v) {
  for (int k = 0; k < count; ++k) {
    if (std::strcmp(entries[k].name, name) == 0) {
      entries[k].value = v;
      return;
    }
  }
  if (count < static_cast<int>(entries.size())) entries[count++] = {name, v};
}

double Metrics::Get(const char* name, double fallback) const {
  for (int k = 0; k < count; ++k) {
    if (std::strcmp(entries[k].name, name) == 0) return entries[k].value;
  }
  return fallback;
}

namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Keeps data[k] = original[perm[k]] as the order changes, moving elements
// in place (no copy of the dataset): cur is the current permutation.
template <typename T>
class OrderedData {
 public:
  explicit OrderedData(std::vector<T> d) : data_(std::move(d)), cur_(data_.size()) {
    for (size_t k = 0; k < cur_.size(); ++k) cur_[k] = static_cast<int64_t>(k);
  }
  const std::vector<T>& data() const { return data_; }

  // The order of epoch `epoch`: a seeded Fisher–Yates shuffle of the
  // original order, so any epoch can be reproduced directly on resume.
  void Order(uint64_t seed, int64_t epoch) {
    const size_t n = data_.size();
    std::vector<int64_t> want(n);
    for (size_t k = 0; k < n; ++k) want[k] = static_cast<int64_t>(k);
    uint64_t s = Mix(seed ^ Mix(static_cast<uint64_t>(epoch) + 0x51ed2701ULL));
    for (size_t k = n; k > 1; --k) {
      s = Mix(s);
      std::swap(want[k - 1], want[s % k]);
    }
    // Gather: new[k] = data_[where[want[k]]] with where = cur^-1.
    std::vector<int64_t> where(n), src(n);
    for (size_t k = 0; k < n; ++k) where[cur_[k]] = static_cast<int64_t>(k);
    for (size_t k = 0; k < n; ++k) src[k] = where[want[k]];
    std::vector<uint8_t> done(n, 0);
    for (size_t start = 0; start < n; ++start) {
      if (done[start]) continue;
      // Follow the cycle start ← src[start] ← src[src[start]] ...
      T tmp = std::move(data_[start]);
      size_t k = start;
      while (true) {
        done[k] = 1;
        const auto from = static_cast<size_t>(src[k]);
        if (from == start) {
          data_[k] = std::move(tmp);
          break;
        }
        data_[k] = std::move(data_[from]);
        k = from;
      }
    }
    cur_ = std::move(want);
  }

 private:
  std::vector<T> data_;
  std::vector<int64_t> cur_;
};

int64_t CountTokens(const model::PackedBatch& b) {
  int64_t n = 0;
  for (int32_t s : b.segments) n += s >= 0;
  return n;
}

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
    r.tokens = CountTokens(batch_);
    return r;
  }

 private:
  OrderedData<SftExample> data_;
  SftPackOptions pack_;
  model::PackedBatch batch_;
};

class RewardObjective final : public Objective {
 public:
  RewardObjective(std::vector<RankedSample> s, RewardOptions o)
      : data_(std::move(s)), opts_(std::move(o)) {}
  const char* name() const override { return "rm"; }
  int64_t size() const override { return static_cast<int64_t>(data_.data().size()); }
  void Order(uint64_t seed, int64_t epoch) override {
    data_.Order(seed, epoch);
    // Responses get a new row order every epoch too.
    shuffle_seed_ = Mix(seed + static_cast<uint64_t>(epoch));
  }
  Result<int64_t> Pack(int64_t cursor, int64_t B, int64_t T) override {
    std::span<const RankedSample> rest(data_.data().data() + cursor, data_.data().size() - cursor);
    return PackRm(rest, opts_, B, T, shuffle_seed_, &batch_);
  }
  double Weight() const override { return static_cast<double>(batch_.pairs.size()); }
  const model::PackedBatch& batch() const override { return batch_.batch; }
  Result<BatchResult> LossAndBackward(model::LlamaModel& m, bool backward,
                                      double grad_scale) override {
    if (!m.values())
      return Status::FailedPrecondition("RM training needs a reward model (score head)");
    const size_t R = batch_.reward_index.size();
    rewards_.resize(R);
    drewards_.resize(R);
    for (size_t r = 0; r < R; ++r) rewards_[r] = m.values()[batch_.reward_index[r]];
    HERD_ASSIGN_OR_RETURN(RewardMetrics rm,
                          BradleyTerryLoss(rewards_, batch_.pairs, opts_, drewards_));
    if (backward) {
      // The loss touches the scalar head only at each response's last token.
      dvalues_.assign(static_cast<size_t>(batch_.batch.size()), 0.0f);
      for (size_t r = 0; r < R; ++r) {
        dvalues_[batch_.reward_index[r]] += static_cast<float>(grad_scale * drewards_[r]);
      }
      HERD_RETURN_IF_ERROR(m.BackwardFromValues(dvalues_.data()));
    }
    BatchResult out;
    out.metrics.Set("loss", rm.loss);
    out.metrics.Set("accuracy", rm.accuracy);
    out.metrics.Set("margin", rm.margin);
    out.weight = static_cast<double>(rm.pairs);
    out.tokens = CountTokens(batch_.batch);
    return out;
  }

 private:
  OrderedData<RankedSample> data_;
  RewardOptions opts_;
  uint64_t shuffle_seed_ = 0;
  RmBatch batch_;
  std::vector<float> rewards_, drewards_, dvalues_;
};

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
    r.tokens = CountTokens(batch_.batch);
    return r;
  }

 private:
  OrderedData<DpoSample> data_;
  DpoOptions opts_;
  std::shared_ptr<const ReferenceLogProbs> ref_;
  DpoBatch batch_;
  DpoWorkspace ws_;
  std::vector<SequenceLogProb> ref_lp_;
};

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";

}  // namespace

std::unique_ptr<Objective> MakeSftObjective(std::vector<SftExample> examples, SftPackOptions pack) {
  return std::make_unique<SftObjective>(std::move(examples), pack);
}
std::unique_ptr<Objective> MakeRewardObjective(std::vector<RankedSample> samples,
                                               RewardOptions opts) {
  return std::make_unique<RewardObjective>(std::move(samples), std::move(opts));
}
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

Trainer::Trainer(model::LlamaModel* m, Objective* t, Objective* e, TrainerOptions o, LrSchedule lr)
    : model_(m), train_(t), eval_(e), opts_(std::move(o)), lr_(std::move(lr)) {
  adamw_ = std::make_unique<AdamW>(m->num_params(), opts_.adamw, m->layout().NoDecayRanges());
}

Result<std::unique_ptr<Trainer>> Trainer::Create(model::LlamaModel* model, Objective* train,
                                                 Objective* eval, TrainerOptions opts) {
  if (!model || !train) return Status::InvalidArgument("trainer: model and objective required");
  if (opts.steps <= 0) return Status::InvalidArgument("trainer: steps must be > 0");
  if (opts.micro_batches <= 0) return Status::InvalidArgument("trainer: micro_batches must be > 0");
  if (opts.batch_rows <= 0 || opts.batch_rows > model->max_batch()) {
    return Status::InvalidArgument("trainer: batch_rows " + std::to_string(opts.batch_rows) +
                                   " outside 1.." + std::to_string(model->max_batch()));
  }
  if (opts.seq_len <= 1 || opts.seq_len > model->max_seq()) {
    return Status::InvalidArgument("trainer: seq_len " + std::to_string(opts.seq_len) +
                                   " outside 2.." + std::to_string(model->max_seq()));
  }
  if (train->size() == 0) return Status::InvalidArgument("trainer: no training examples");
  if (opts.save_every > 0 && opts.checkpoint_dir.empty()) {
    return Status::InvalidArgument("trainer: save_every needs checkpoint_dir");
  }
  opts.lr.total_steps = std::max<int64_t>(opts.steps, opts.lr.warmup_steps + 1);
  auto lr = LrSchedule::Create(opts.lr);
  if (!lr.ok()) return lr.status().WithContext("trainer: lr");
  std::unique_ptr<Trainer> t(
      new Trainer(model, train, eval, std::move(opts), std::move(lr).value()));
  train->Order(t->opts_.seed, 0);
  if (eval) eval->Order(t->opts_.seed, 0);
  return t;
}

Status Trainer::PackNextTrainBatch() {
  // At most one pass over the data without a trainable batch (e.g. every
  // RM sample filtered out) before giving up.
  int64_t skipped = 0;
  while (true) {
    if (cursor_ >= train_->size()) {
      ++epoch_;
      cursor_ = 0;
      train_->Order(opts_.seed, epoch_);
    }
    HERD_ASSIGN_OR_RETURN(int64_t n, train_->Pack(cursor_, opts_.batch_rows, opts_.seq_len));
    if (n <= 0) return Status::Internal("trainer: packing made no progress");
    cursor_ += n;
    if (train_->HasLoss()) return Status::Ok();
    skipped += n;
    if (skipped > train_->size()) {
      return Status::FailedPrecondition("trainer: no example in the data has a loss to train on");
    }
  }
}

Status Trainer::Run(const ProgressFn& progress) {
  using Clock = std::chrono::steady_clock;
  bool evaluated_last = false;
  while (step_ < opts_.steps) {
    const auto t0 = Clock::now();
    model_->ZeroGrad();
    BatchResult br;
    if (opts_.micro_batches == 1) {
      HERD_RETURN_IF_ERROR(PackNextTrainBatch());
      HERD_RETURN_IF_ERROR(model_->Forward(train_->batch()));
      HERD_ASSIGN_OR_RETURN(br, train_->LossAndBackward(*model_, /*backward=*/true));
    } else {
      // Each micro-batch adds the gradient of its summed loss (scale =
      // its weight); Finish divides by the total weight: the gradient of
      // the mean over every token / pair of the step.
      GradAccumulator acc(opts_.micro_batches);
      Metrics sum;
      bool last = false;
      while (!last) {
        HERD_RETURN_IF_ERROR(PackNextTrainBatch());
        const double w = train_->Weight();
        HERD_RETURN_IF_ERROR(model_->Forward(train_->batch()));
        HERD_ASSIGN_OR_RETURN(BatchResult mb, train_->LossAndBackward(*model_, true, w));
        for (int k = 0; k < mb.metrics.count; ++k) {
          const auto& e = mb.metrics.entries[k];
          sum.Set(e.name, sum.Get(e.name) + e.value * w);
        }
        br.tokens += mb.tokens;
        br.weight += w;
        last = acc.Add(w, mb.metrics.Get("loss") * w);
      }
      acc.Finish(model_->grads(), model_->num_params());
      for (int k = 0; k < sum.count; ++k) {
        br.metrics.Set(sum.entries[k].name, sum.entries[k].value / br.weight);
      }
    }
    const double gn = ClipGradNorm(model_->grads(), model_->num_params(), opts_.grad_clip);
    const double lr = lr_.At(step_);
    // A non-finite gradient skips the update but still counts as a step, so
    // a bad batch cannot stall the schedule.
    if (std::isfinite(gn)) adamw_->Step(model_->params(), model_->grads(), static_cast<float>(lr));
    ++step_;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    Progress p;
    p.step = step_;
    p.total_steps = opts_.steps;
    p.epoch = epoch_;
    p.lr = lr;
    p.grad_norm = gn;
    p.tokens_per_s = secs > 0 ? static_cast<double>(br.tokens) / secs : 0;
    p.metrics = br.metrics;
    // Save before reporting, so a cancel from the callback keeps this step.
    if (opts_.save_every > 0 && step_ % opts_.save_every == 0) {
      char name[32];
      std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step_));
      HERD_RETURN_IF_ERROR(SaveState((fs::path(opts_.checkpoint_dir) / name).string()));
    }
    if (progress && !progress(p))
      return Status::Aborted("trainer: cancelled at step " + std::to_string(step_));
    evaluated_last = false;
    if (eval_ && opts_.eval_every > 0 && step_ % opts_.eval_every == 0) {
      HERD_ASSIGN_OR_RETURN(Metrics em, Evaluate());
      evaluated_last = true;
      Progress ep = p;
      ep.is_eval = true;
      ep.metrics = em;
      if (progress && !progress(ep))
        return Status::Aborted("trainer: cancelled at step " + std::to_string(step_));
    }
  }
  if (eval_ && !evaluated_last) {
    HERD_ASSIGN_OR_RETURN(Metrics em, Evaluate());
    Progress ep;
    ep.step = step_;
    ep.total_steps = opts_.steps;
    ep.epoch = epoch_;
    ep.is_eval = true;
    ep.metrics = em;
    if (progress) progress(ep);
  }
  return Status::Ok();
}

Result<Metrics> EvaluateObjective(model::LlamaModel& m, Objective& obj, int64_t B, int64_t T) {
  Metrics sum;
  double weight = 0;
  int64_t cursor = 0;
  while (cursor < obj.size()) {
    HERD_ASSIGN_OR_RETURN(int64_t n, obj.Pack(cursor, B, T));
    if (n <= 0) return Status::Internal("evaluate: packing made no progress");
    cursor += n;
    if (!obj.HasLoss()) continue;
    HERD_RETURN_IF_ERROR(m.Forward(obj.batch()));
    HERD_ASSIGN_OR_RETURN(BatchResult br, obj.LossAndBackward(m, /*backward=*/false));
    for (int k = 0; k < br.metrics.count; ++k) {
      const auto& e = br.metrics.entries[k];
      sum.Set(e.name, sum.Get(e.name) + e.value * br.weight);
    }
    weight += br.weight;
  }
  Metrics out;
  for (int k = 0; k < sum.count; ++k) {
    out.Set(sum.entries[k].name, weight > 0 ? sum.entries[k].value / weight : 0.0);
  }
  out.Set("examples", weight);
  return out;
}

Result<Metrics> Trainer::Evaluate() {
  if (!eval_) return Status::FailedPrecondition("trainer: no eval set");
  return EvaluateObjective(*model_, *eval_, opts_.batch_rows, opts_.seq_len);
}

Status Trainer::SaveState(const std::string& dir) {
  model::SaveOptions so;
  so.overwrite = true;
  HERD_RETURN_IF_ERROR(
      model::SaveCheckpoint(dir, model_->config(), model_->ParamViews(), model::DType::kF32, so)
          .WithContext("trainer: save " + dir));
  // AdamW moments share the parameter layout, so the same views name them.
  auto mv = model_->layout().Views(adamw_->m());
  auto vv = model_->layout().Views(adamw_->v());
  std::vector<model::TensorSpec> specs;
  for (const auto& v : mv) specs.push_back({v.name + ".exp_avg", v.shape, v.data});
  for (const auto& v : vv) specs.push_back({v.name + ".exp_avg_sq", v.shape, v.data});
  HERD_RETURN_IF_ERROR(model::WriteSafetensors((fs::path(dir) / kOptimizerFile).string(), specs,
                                               model::DType::kF32));
  nlohmann::json st;
  st["objective"] = train_->name();
  st["step"] = step_;
  st["epoch"] = epoch_;
  st["cursor"] = cursor_;
  st["seed"] = opts_.seed;
  st["optimizer_step"] = adamw_->step();
  st["batch_rows"] = opts_.batch_rows;
  st["seq_len"] = opts_.seq_len;
  st["micro_batches"] = opts_.micro_batches;
  st["train_examples"] = train_->size();
  // Written last and atomically: its presence marks the directory complete.
  return WriteFileAtomic((fs::path(dir) / kStateFile).string(), st.dump(2) + "\n");
}

Status Trainer::LoadState(const std::string& dir) {
  const fs::path sp = fs::path(dir) / kStateFile;
  std::ifstream f(sp);
  if (!f) return Status::NotFound(sp.string() + ": no trainer state");
  nlohmann::json st = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (st.is_discarded() || !st.is_object())
    return Status::DataLoss(sp.string() + ": not valid JSON");
  for (const char* k :
       {"objective", "step", "epoch", "cursor", "seed", "optimizer_step", "train_examples"}) {
    if (!st.contains(k)) return Status::DataLoss(sp.string() + ": field '" + k + "' missing");
  }
  if (!st["objective"].is_string() || st["objective"].get<std::string>() != train_->name()) {
    return Status::FailedPrecondition(sp.string() + ": field 'objective' is " +
                                      st["objective"].dump() + ", this trainer runs '" +
                                      train_->name() + "'");
  }
  if (!st["seed"].is_number_unsigned() || st["seed"].get<uint64_t>() != opts_.seed) {
    return Status::FailedPrecondition(sp.string() + ": field 'seed' differs from the options");
  }
  if (!st["train_examples"].is_number_integer() ||
      st["train_examples"].get<int64_t>() != train_->size()) {
    return Status::FailedPrecondition(sp.string() +
                                      ": field 'train_examples' differs: the data "
                                      "changed, so the saved position means nothing");
  }
  for (const char* k : {"step", "epoch", "cursor", "optimizer_step"}) {
    if (!st[k].is_number_integer() || st[k].get<int64_t>() < 0) {
      return Status::DataLoss(sp.string() + ": field '" + k + "' is not a count");
    }
  }
  HERD_RETURN_IF_ERROR(model::LoadCheckpointInto(dir, model_->ParamViews()));
  HERD_ASSIGN_OR_RETURN(model::SafetensorsFile opt,
                        model::SafetensorsFile::Open((fs::path(dir) / kOptimizerFile).string()));
  for (auto [suffix, buf] :
       {std::pair{".exp_avg", adamw_->m()}, std::pair{".exp_avg_sq", adamw_->v()}}) {
    for (const auto& v : model_->layout().Views(buf)) {
      HERD_RETURN_IF_ERROR(opt.ReadF32(v.name + suffix, v.data, v.numel()));
    }
  }
  adamw_->set_step(st["optimizer_step"].get<int64_t>());
  step_ = st["step"].get<int64_t>();
  epoch_ = st["epoch"].get<int64_t>();
  cursor_ = st["cursor"].get<int64_t>();
  train_->Order(opts_.seed, epoch_);
  return Status::Ok();
}

Result<std::string> Trainer::LatestCheckpoint() const {
  std::error_code ec;
  if (opts_.checkpoint_dir.empty() || !fs::is_directory(opts_.checkpoint_dir, ec)) {
    return Status::NotFound("trainer: no checkpoint dir");
  }
  int64_t best = -1;
  std::string path;
  for (const auto& e : fs::directory_iterator(opts_.checkpoint_dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) != 0 || !fs::exists(e.path() / kStateFile, ec)) continue;
    char* end = nullptr;
    const long long s = std::strtoll(n.c_str() + 5, &end, 10);
    if (end && *end == '\0' && s > best) {
      best = s;
      path = e.path().string();
    }
  }
  if (best < 0)
    return Status::NotFound("trainer: no complete checkpoint in " + opts_.checkpoint_dir);
  return path;
}

}  // namespace herd::train
