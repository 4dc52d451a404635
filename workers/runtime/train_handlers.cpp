// train_sft, train_rm, train_dpo and average (docs/tasks.md): datasets
// from herdd's artifact directory through the chat format into the one
// trainer loop, checkpoints back as HF directories.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>

#include "tasks/average.h"
#include "tasks/datasets.h"
#include "tasks/protocol.h"
#include "tasks/train.h"
#include "workers/model/checkpoint.h"
#include "workers/runtime/handlers.h"
#include "workers/runtime/task_io.h"
#include "workers/train/averaging.h"
#include "workers/train/dpo.h"
#include "workers/train/examples.h"
#include "workers/train/reward.h"
#include "workers/train/sft.h"
#include "workers/train/trainer.h"

namespace herd::worker {

using nlohmann::json;

namespace {

train::TrainerOptions TrainerOptionsFrom(const tasks::TrainHparams& h) {
  train::TrainerOptions o;
  o.steps = h.steps;
  o.batch_rows = h.batch_rows;
  o.seq_len = h.seq_len;
  o.grad_clip = h.grad_clip;
  o.seed = static_cast<uint64_t>(h.seed);
  o.lr.peak_lr = h.lr;
  o.lr.warmup_steps = std::min<int64_t>(h.warmup_steps, o.steps - 1);
  o.lr.min_lr_ratio = std::max(1e-6, h.min_lr_ratio);
  o.lr.decay = h.schedule == "linear" ? train::LrScheduleOptions::Decay::kLinear
                                      : train::LrScheduleOptions::Decay::kCosine;
  o.adamw.weight_decay = static_cast<float>(h.weight_decay);
  return o;
}

// Trains, reporting progress as heartbeats; returns the final metrics:
// each training metric as its mean over the last tenth of the steps, at
// most 50 (one step's batch is too few pairs to say much), and the eval
// metrics at the end.
Result<json> RunTrainer(TaskContext& ctx, model::LlamaModel& m, train::Objective& obj,
                        train::Objective* eval, const train::TrainerOptions& opts) {
  HERD_ASSIGN_OR_RETURN(auto trainer, train::Trainer::Create(&m, &obj, eval, opts));
  const int64_t tail_from = opts.steps - std::clamp<int64_t>(opts.steps / 10, 1, 50);
  std::map<std::string, double> tail_sum;
  int64_t tail_n = 0;
  json last = json::object();
  double tok_s_sum = 0;
  int64_t tok_s_n = 0;
  auto t0 = std::chrono::steady_clock::now();
  Status s = trainer->Run([&](const train::Progress& p) {
    json j = {{"step", p.step}, {"total_steps", p.total_steps}, {"lr", p.lr},
              {"tokens_per_s", p.tokens_per_s}, {"stage", obj.name()}};
    for (int i = 0; i < p.metrics.count; ++i) {
      j[p.metrics.entries[i].name] = p.metrics.entries[i].value;
    }
    if (p.is_eval) {
      json e = json::object();
      for (int i = 0; i < p.metrics.count; ++i) e[p.metrics.entries[i].name] = p.metrics.entries[i].value;
      last["eval"] = e;
    } else {
      if (p.step > tail_from) {
        for (int i = 0; i < p.metrics.count; ++i) tail_sum[p.metrics.entries[i].name] += p.metrics.entries[i].value;
        ++tail_n;
      }
      tok_s_sum += p.tokens_per_s;
      ++tok_s_n;
      ctx.Report(j);
    }
    return !ctx.ShouldStop();
  });
  HERD_RETURN_IF_ERROR(s);
  for (const auto& [k, v] : tail_sum) last[k] = v / static_cast<double>(tail_n);  // tail_n > 0 when tail_sum is not empty
  last["steps"] = trainer->step();
  last["tokens_per_s"] = tok_s_n ? tok_s_sum / static_cast<double>(tok_s_n) : 0.0;
  last["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return last;
}

Result<std::vector<train::Strength>> Strengths(const std::vector<std::string>& names) {
  std::vector<train::Strength> out;
  for (const auto& n : names) {
    HERD_ASSIGN_OR_RETURN(train::Strength st, train::ParseStrength(n));
    out.push_back(st);
  }
  return out;
}

// Preference pair rows (tasks/datasets.h) → ranked RM samples.
Result<std::vector<train::RankedSample>> RankedSamples(const model::ChatFormatter& format,
                                                       const std::vector<tasks::PairRow>& rows,
                                                       const std::string& path) {
  std::vector<train::RankedSample> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const tasks::PairRow& r = rows[i];
    std::string where = path + ":" + std::to_string(i + 1);
    HERD_ASSIGN_OR_RETURN(auto prompt, ChatMessages(r.prompt, where + " prompt"));
    auto strength = train::ParseStrength(r.strength);
    if (!strength.ok()) return strength.status().WithContext(where);
    HERD_ASSIGN_OR_RETURN(auto s, train::RankedSampleFromChat(format, r.id, prompt, r.chosen, r.rejected,
                                                              r.edited.value_or(""), *strength));
    out.push_back(std::move(s));
  }
  return out;
}

Result<json> TrainSft(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::TrainSpec spec, tasks::DecodeTrainSpec(ctx.spec()));
  const train::TrainerOptions opts = TrainerOptionsFrom(spec.hparams);
  HERD_ASSIGN_OR_RETURN(auto rows, tasks::ReadConversationRows(spec.dataset));
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(spec.base, spec.text));
  std::vector<train::SftExample> examples;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string where = spec.dataset + ":" + std::to_string(i + 1);
    HERD_ASSIGN_OR_RETURN(auto msgs, ChatMessages(rows[i].messages, where + " messages"));
    auto ex = train::SftExampleFromChat(format, msgs);
    if (!ex.ok()) return ex.status().WithContext(where);
    examples.push_back(std::move(ex).value());
  }
  if (examples.empty()) return Status::InvalidArgument(spec.dataset + ": no conversations");
  HERD_ASSIGN_OR_RETURN(auto m, LoadModel(spec.base, opts.batch_rows, opts.seq_len));
  train::SftPackOptions po;
  po.truncate = true;
  auto obj = train::MakeSftObjective(std::move(examples), po);
  tasks::TrainResult res;
  HERD_ASSIGN_OR_RETURN(res.metrics, RunTrainer(ctx, *m, *obj, nullptr, opts));
  res.metrics["examples"] = obj->size();
  HERD_ASSIGN_OR_RETURN(res.checkpoint, SaveModel(*m, spec.out, format, spec.base, spec.text));
  return tasks::ToJson(res);
}

Result<json> TrainRm(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::TrainSpec spec, tasks::DecodeTrainSpec(ctx.spec()));
  const train::TrainerOptions opts = TrainerOptionsFrom(spec.hparams);
  train::RewardOptions ro;
  HERD_ASSIGN_OR_RETURN(ro.strengths, Strengths(spec.strengths));
  ro.use_margin = spec.margin;
  HERD_ASSIGN_OR_RETURN(auto rows, tasks::ReadPairRows(spec.dataset));
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(spec.base, spec.text));
  HERD_ASSIGN_OR_RETURN(auto samples, RankedSamples(format, rows, spec.dataset));
  std::vector<train::RankedSample> heldout;
  if (!spec.heldout.empty()) {
    HERD_ASSIGN_OR_RETURN(auto hrows, tasks::ReadPairRows(spec.heldout));
    HERD_ASSIGN_OR_RETURN(heldout, RankedSamples(format, hrows, spec.heldout));
  }
  HERD_ASSIGN_OR_RETURN(auto m, LoadModel(spec.base, opts.batch_rows, opts.seq_len, /*as_reward_model=*/true));
  auto obj = train::MakeRewardObjective(std::move(samples), ro);
  std::unique_ptr<train::Objective> eval;
  if (!heldout.empty()) eval = train::MakeRewardObjective(std::move(heldout), ro);
  tasks::TrainResult res;
  HERD_ASSIGN_OR_RETURN(res.metrics, RunTrainer(ctx, *m, *obj, eval.get(), opts));
  if (res.metrics.contains("eval") && res.metrics["eval"].contains("accuracy")) {
    res.metrics["heldout_accuracy"] = res.metrics["eval"]["accuracy"];
  }
  HERD_ASSIGN_OR_RETURN(res.checkpoint, SaveModel(*m, spec.out, format, spec.base, spec.text));
  return tasks::ToJson(res);
}

Result<json> TrainDpo(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::TrainSpec spec, tasks::DecodeTrainSpec(ctx.spec()));
  if (spec.ref.empty()) return Status::InvalidArgument("spec.ref: required for train_dpo");
  const train::TrainerOptions opts = TrainerOptionsFrom(spec.hparams);
  HERD_ASSIGN_OR_RETURN(auto keep, Strengths(spec.strengths));
  train::DpoOptions dopt;
  dopt.beta = spec.beta;
  dopt.nll_alpha = spec.nll_alpha;
  dopt.mask_formatting = spec.mask_formatting;
  HERD_ASSIGN_OR_RETURN(auto rows, tasks::ReadPairRows(spec.dataset));
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(spec.base, spec.text));
  std::vector<train::DpoSample> samples;
  for (size_t i = 0; i < rows.size(); ++i) {
    const tasks::PairRow& r = rows[i];
    std::string where = spec.dataset + ":" + std::to_string(i + 1);
    auto strength = train::ParseStrength(r.strength);
    if (!strength.ok()) return strength.status().WithContext(where);
    if (std::find(keep.begin(), keep.end(), *strength) == keep.end()) continue;
    if (r.chosen == r.rejected) continue;  // nothing to prefer
    HERD_ASSIGN_OR_RETURN(auto prompt, ChatMessages(r.prompt, where + " prompt"));
    auto s = train::DpoSampleFromChat(format, r.id, prompt, r.chosen, r.rejected);
    if (!s.ok()) return s.status().WithContext(where);
    samples.push_back(std::move(s).value());
  }
  if (samples.empty()) return Status::InvalidArgument(spec.dataset + ": no pairs of the configured strengths");
  // Reference log-probs once, from the frozen reference; then the policy.
  std::shared_ptr<train::ReferenceLogProbs> table;
  {
    HERD_ASSIGN_OR_RETURN(auto ref_model, LoadModel(spec.ref, opts.batch_rows, opts.seq_len));
    HERD_ASSIGN_OR_RETURN(tasks::CheckpointInfo ref_desc, DescribeCheckpoint(spec.ref));
    HERD_ASSIGN_OR_RETURN(table, train::ReferenceForDpo(*ref_model, samples, dopt, opts.batch_rows,
                                                        opts.seq_len, ref_desc.sha256));
  }
  HERD_ASSIGN_OR_RETURN(auto m, LoadModel(spec.base, opts.batch_rows, opts.seq_len));
  auto obj = train::MakeDpoObjective(std::move(samples), dopt, table);
  tasks::TrainResult res;
  HERD_ASSIGN_OR_RETURN(res.metrics, RunTrainer(ctx, *m, *obj, nullptr, opts));
  HERD_ASSIGN_OR_RETURN(res.checkpoint, SaveModel(*m, spec.out, format, spec.base, spec.text));
  return tasks::ToJson(res);
}

// Greedy averaging ("greedy soup", Wortsman et al. 2022): the inputs in
// order of their accuracy on the selection pairs; each joins the average
// only if the average with it is at least as accurate as without. Reward
// models fine-tuned from a small base can land in different basins, where
// their uniform average is worse than either (docs/demo.md); this keeps the
// averaging step from ever making the stage's model worse on the selection
// set. Only reward models: the metric is pair accuracy.
struct Selection {
  std::vector<train::RankedSample> pairs;
  train::RewardOptions ro;
  int64_t B = tasks::kDefaultBatchRows, T = tasks::kDefaultSeqLen;
};

// The inputs are herd's checkpoints: they carry the run's tokenizer and
// chat template, so the first one's formatter reads the selection pairs.
Result<Selection> ReadSelection(const tasks::AverageSelect& sel, const std::string& first_input) {
  Selection s;
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(first_input, {}));
  HERD_ASSIGN_OR_RETURN(s.ro.strengths, Strengths(sel.strengths));
  HERD_ASSIGN_OR_RETURN(auto rows, tasks::ReadPairRows(sel.dataset));
  HERD_ASSIGN_OR_RETURN(s.pairs, RankedSamples(format, rows, sel.dataset));
  s.B = sel.batch_rows;
  s.T = sel.seq_len;
  return s;
}

// Pair accuracy of the reward model in dir on the selection pairs, and how
// many pairs that was.
Result<std::pair<double, int64_t>> PairAccuracy(const std::string& dir, const Selection& sel) {
  HERD_ASSIGN_OR_RETURN(auto m, LoadModel(dir, sel.B, sel.T));
  if (!m->config().is_reward_model) {
    return Status::InvalidArgument("spec.select: " + dir + " is not a reward model");
  }
  auto obj = train::MakeRewardObjective(sel.pairs, sel.ro);
  HERD_ASSIGN_OR_RETURN(train::Metrics mt, train::EvaluateObjective(*m, *obj, sel.B, sel.T));
  return std::make_pair(mt.Get("accuracy"), static_cast<int64_t>(mt.Get("examples")));
}

Result<json> Average(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::AverageSpec spec, tasks::DecodeAverageSpec(ctx.spec()));
  const std::string& out = spec.out;
  std::vector<train::AverageInput> inputs;
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    train::AverageInput in;
    in.dir = spec.inputs[i];
    if (i < spec.weights.size()) in.weight = spec.weights[i];
    inputs.push_back(in);
  }
  train::AverageOptions ao;
  ao.overwrite = true;  // a retried task rewrites its own output
  const bool greedy = spec.select.has_value();
  const int64_t n = static_cast<int64_t>(inputs.size());
  ctx.Report({{"step", 0}, {"total_steps", greedy ? 2 * n : 1}, {"stage", "average"}});
  json selection;
  // The inputs in the output, in the order of rep.weights.
  std::vector<size_t> chosen(inputs.size());
  for (size_t i = 0; i < chosen.size(); ++i) chosen[i] = i;
  std::optional<train::AverageReport> written;  // set once out holds the average of `chosen`
  if (greedy) {
    HERD_ASSIGN_OR_RETURN(Selection sel, ReadSelection(*spec.select, spec.inputs.at(0)));
    std::vector<double> acc(inputs.size());
    int64_t pairs = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      HERD_ASSIGN_OR_RETURN(auto a, PairAccuracy(inputs[i].dir, sel));
      acc[i] = a.first;
      pairs = a.second;
      ctx.Report({{"step", i + 1}, {"total_steps", 2 * n}, {"stage", "average"}});
      if (ctx.ShouldStop()) return Status::Aborted("stopped");
    }
    std::vector<size_t> order = chosen;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return acc[a] > acc[b]; });
    // Each candidate is averaged into trial_dir; a kept one becomes out, so
    // the final average is never computed twice.
    const std::string trial_dir = out + ".trial";
    chosen = {order[0]};
    double best = acc[order[0]];
    json trials = json::array();
    for (size_t k = 1; k < order.size(); ++k) {
      std::vector<size_t> cand = chosen;
      cand.push_back(order[k]);
      std::vector<train::AverageInput> in;
      for (size_t i : cand) in.push_back(inputs[i]);
      HERD_ASSIGN_OR_RETURN(train::AverageReport rep, train::AverageCheckpoints(in, trial_dir, ao));
      HERD_ASSIGN_OR_RETURN(auto a, PairAccuracy(trial_dir, sel));
      const bool keep = a.first >= best;
      trials.push_back({{"add", order[k]}, {"accuracy", a.first}, {"kept", keep}});
      if (keep) {
        std::error_code ec;
        std::filesystem::remove_all(out, ec);
        std::filesystem::rename(trial_dir, out, ec);
        if (ec) return Status::Internal("average: moving " + trial_dir + " to " + out + ": " + ec.message());
        chosen = cand;
        best = a.first;
        written = rep;
      }
      ctx.Report({{"step", n + static_cast<int64_t>(k)}, {"total_steps", 2 * n}, {"stage", "average"}});
      if (ctx.ShouldStop()) return Status::Aborted("stopped");
    }
    std::error_code ec;
    std::filesystem::remove_all(trial_dir, ec);
    std::vector<size_t> sorted = chosen;
    std::sort(sorted.begin(), sorted.end());
    selection = {{"method", "greedy"},    {"metric", "pair_accuracy"}, {"pairs", pairs},
                 {"input_accuracy", acc}, {"trials", trials},          {"chosen", sorted},
                 {"accuracy", best}};
  }
  if (!written) {
    std::vector<train::AverageInput> used;
    for (size_t i : chosen) used.push_back(inputs[i]);
    HERD_ASSIGN_OR_RETURN(written, train::AverageCheckpoints(used, out, ao));
  }
  const train::AverageReport& rep = *written;
  // The weights as applied, one per input (0 for one left out).
  std::vector<double> weights(inputs.size(), 0.0);
  for (size_t k = 0; k < chosen.size(); ++k) weights[chosen[k]] = rep.weights[k];
  tasks::AverageResult res;
  HERD_ASSIGN_OR_RETURN(res.checkpoint, SealCheckpoint(out));
  res.weights = weights;
  res.metrics = {{"inputs", inputs.size()}, {"tensors", rep.tensors}, {"parameters", rep.parameters}};
  if (greedy) res.metrics["selection"] = selection;
  return tasks::ToJson(res);
}

}  // namespace

void AddTrainHandlers(Worker& w) {
  w.AddHandler(tasks::kTrainSft, TrainSft);
  w.AddHandler(tasks::kTrainRm, TrainRm);
  w.AddHandler(tasks::kTrainDpo, TrainDpo);
  w.AddHandler(tasks::kAverage, Average);
}

}  // namespace herd::worker
