#include "daemon/stages/training.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "stores/artifacts.h"
#include "stores/store.h"
#include "tasks/protocol.h"

namespace herd::daemon::stages {

using nlohmann::json;

Result<Plan> TrainingStage::StartVariants(RunView& v, const char* kind, const tasks::TrainSpec& proto,
                                          std::vector<stores::DatasetMember> members) {
  Plan plan;
  plan.members = std::move(members);
  for (const Variant& var : Config(v.cfg).variants) {
    tasks::TrainSpec spec = proto;
    HERD_ASSIGN_OR_RETURN(auto ck, v.NewCheckpoint());
    spec.checkpoint_id = ck.first;
    spec.out = ck.second;
    spec.variant = var.name;
    spec.hparams = var.hp;
    plan.tasks.push_back(v.NewTask(name(), kind, tasks::Encode(spec)));
  }
  return plan;
}

Status TrainingStage::Apply(const ApplyEnv& env, stores::WriteTxn& txn, const Task& task) {
  stores::Checkpoint c;
  c.run_id = task.run;
  c.stage = task.stage;
  c.round = static_cast<uint32_t>(task.round);
  c.created_ms = env.now;
  tasks::CheckpointInfo info;
  json metrics;
  if (task.kind == tasks::kAverage) {
    auto spec = tasks::DecodeAverageSpec(task.spec);
    if (!spec.ok()) return BadResult(task, spec.status().message());
    auto res = tasks::DecodeAverageResult(task.result);
    if (!res.ok()) return BadResult(task, res.status().message());
    c.id = spec->checkpoint_id;
    c.parents = spec->parents;
    c.datasets = spec->datasets;
    // The weights as applied (greedy averaging may leave inputs out).
    c.averaging_weights = res->weights.empty() ? spec->weights : res->weights;
    if (c.averaging_weights.size() != spec->inputs.size()) {
      return BadResult(task, "'weights' must have one entry per input (" +
                                 std::to_string(spec->inputs.size()) + ")");
    }
    info = res->checkpoint;
    metrics = res->metrics;
  } else {
    auto spec = tasks::DecodeTrainSpec(task.spec);
    if (!spec.ok()) return BadResult(task, spec.status().message());
    auto res = tasks::DecodeTrainResult(task.result);
    if (!res.ok()) return BadResult(task, res.status().message());
    c.id = spec->checkpoint_id;
    c.variant = spec->variant;
    c.parents = spec->parents;
    c.datasets = spec->datasets;
    c.hyperparameters_json = tasks::ToJson(spec->hparams).dump();
    info = res->checkpoint;
    metrics = res->metrics;
  }
  HERD_ASSIGN_OR_RETURN(c.path, stores::ArtifactStore::CheckpointRelPath(task.run, c.id));
  c.sha256 = info.sha256;
  c.config_hash = info.config_sha256;
  c.size_bytes = info.size_bytes;
  c.metrics_json = metrics.dump();
  txn.PutCheckpoint(c);
  return Status::Ok();
}

Result<Verdict> TrainingStage::Check(RunView& v, const std::vector<Task>& all) {
  std::vector<const Task*> train;
  const Task* avg = nullptr;
  for (const Task& t : all) {
    if (t.kind == tasks::kAverage) avg = &t;
    else train.push_back(&t);
  }
  if (avg) {
    if (avg->state != TaskState::kSucceeded) return Verdict::Waiting();
    HERD_ASSIGN_OR_RETURN(tasks::AverageSpec spec, tasks::DecodeAverageSpec(avg->spec));
    // The variants' metrics, averaged, stand for the stage.
    json metrics = json::object();
    for (const Task* t : train) {
      auto res = tasks::DecodeTrainResult(t->result);
      if (!res.ok()) continue;
      for (auto& [k, x] : res->metrics.items()) {
        if (x.is_number()) {
          metrics[k] = metrics.value(k, 0.0) + x.get<double>() / static_cast<double>(train.size());
        }
      }
    }
    auto ares = tasks::DecodeAverageResult(avg->result);
    if (ares.ok()) metrics["averaged"] = ares->metrics;
    // Retention: the averaged model stays; variant checkpoints go unless kept.
    if (!v.cfg.retention.keep_variants) {
      for (const auto& parent : spec.parents) {
        auto c = v.store->GetCheckpoint(parent);
        if (!c.ok()) continue;
        Status ds = v.artifacts->DeleteCheckpoint(v.run.id, c->id);
        if (ds.ok()) {
          stores::WriteTxn txn = v.store->NewTxn();
          txn.DeleteCheckpoint(c->id);
          ds = v.store->Commit(txn);
        }
        if (!ds.ok()) spdlog::warn("run={} could not delete variant {}: {}", v.run.id, c->id, ds.ToString());
      }
    }
    return Verdict::Finished(spec.checkpoint_id, metrics.dump());
  }
  for (const Task* t : train) {
    if (t->state != TaskState::kSucceeded) return Verdict::Waiting();
  }
  if (train.empty()) return Verdict::Waiting();
  HERD_ASSIGN_OR_RETURN(tasks::TrainSpec spec0, tasks::DecodeTrainSpec(train[0]->spec));
  if (train.size() == 1) {
    auto res = tasks::DecodeTrainResult(train[0]->result);
    return Verdict::Finished(spec0.checkpoint_id, res.ok() ? res->metrics.dump() : "{}");
  }
  // Every variant trained: average them.
  tasks::AverageSpec avg_spec;
  for (const Task* t : train) {
    HERD_ASSIGN_OR_RETURN(tasks::TrainSpec s, tasks::DecodeTrainSpec(t->spec));
    avg_spec.inputs.push_back(s.out);
    avg_spec.parents.push_back(s.checkpoint_id);
  }
  HERD_ASSIGN_OR_RETURN(auto ck, v.NewCheckpoint());
  avg_spec.checkpoint_id = ck.first;
  avg_spec.out = ck.second;
  avg_spec.weights = Config(v.cfg).average_weights;
  avg_spec.datasets = spec0.datasets;
  HERD_ASSIGN_OR_RETURN(avg_spec.select, Select(v, spec0));
  Task t = v.NewTask(name(), tasks::kAverage, tasks::Encode(avg_spec));
  t.priority = train[0]->priority;
  t.needs = train[0]->needs;
  return Verdict::More({std::move(t)});
}

}  // namespace herd::daemon::stages
