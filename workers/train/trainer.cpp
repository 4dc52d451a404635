#include "workers/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/atomic_file.h"
#include "workers/model/checkpoint.h"
#include "workers/model/safetensors.h"
#include "workers/train/grad_accum.h"
#include "workers/train/grad_clip.h"

namespace herd::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";

}  // namespace

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
