// rejection_sampling: K samples per train prompt from the round's starting
// policy, each scored by this round's reward model (Llama 3 §4.2.2); the
// best of each prompt's K is marked selected, and SFT trains on those.
// Skipped when rejection sampling is off.
#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "daemon/stages/stage.h"
#include "stores/store.h"
#include "tasks/protocol.h"
#include "tasks/rejection_sample.h"

namespace herd::daemon::stages {
namespace {

class RejectionSampling final : public Stage {
 public:
  const char* name() const override { return "rejection_sampling"; }

  Result<Plan> Start(RunView& v) override {
    const auto& rs = v.cfg.rejection_sampling;
    if (!rs.enabled) return Plan::Finished("", nlohmann::json{{"skipped", true}}.dump());
    HERD_ASSIGN_OR_RETURN(auto prompts, SelectPrompts(v.store, v.run.id, "train", rs.prompts_per_round,
                                                      v.Salt() + "/rs"));
    if (prompts.empty()) return Plan::Failed("the run has no train prompts");
    HERD_ASSIGN_OR_RETURN(std::string policy, v.PolicyOf(v.r() - 1));
    HERD_ASSIGN_OR_RETURN(const std::string rm, v.LastGood(kRm));
    tasks::RejectionSampleSpec proto;
    HERD_ASSIGN_OR_RETURN(proto.policy, v.PathOf(policy));
    proto.policy_id = policy;
    HERD_ASSIGN_OR_RETURN(proto.rm, v.PathOf(rm));
    proto.rm_id = rm;
    proto.k = rs.k;
    proto.temperature = rs.temperature;
    proto.top_p = rs.top_p;
    proto.top_k = rs.top_k;
    proto.max_new_tokens = rs.max_new_tokens;
    proto.kv_budget_bytes = rs.kv_budget_bytes;
    proto.text = v.Text();
    Plan plan;
    const size_t per = static_cast<size_t>(rs.prompts_per_task);
    for (size_t b0 = 0; b0 < prompts.size(); b0 += per) {
      tasks::RejectionSampleSpec spec = proto;
      spec.prompts = TaskPrompts(prompts, b0, b0 + per);
      spec.seed = Hash64(v.Salt() + "/rs/" + std::to_string(b0));
      plan.tasks.push_back(v.NewTask(name(), tasks::kRejectionSample, tasks::Encode(spec)));
    }
    return plan;
  }

  // Every sample is stored; the best-scored of each prompt is selected.
  Status Apply(const ApplyEnv& env, stores::WriteTxn& txn, const Task& task) override {
    if (task.kind != tasks::kRejectionSample) return Status::Ok();
    auto spec = tasks::DecodeRejectionSampleSpec(task.spec);
    if (!spec.ok()) return BadResult(task, spec.status().message());
    auto res = tasks::DecodeRejectionSampleResult(task.result);
    if (!res.ok()) return BadResult(task, res.status().message());
    std::map<std::string, std::pair<double, size_t>> best;  // prompt -> (score, index)
    std::vector<stores::Sample> samples;
    samples.reserve(res->samples.size());
    for (const auto& s : res->samples) {
      stores::Sample x;
      x.run_id = task.run;
      x.round = static_cast<uint32_t>(task.round);
      x.prompt_id = s.prompt_id;
      x.idx = s.idx;
      x.tokens = s.tokens;
      x.text = s.text;
      x.logprob = s.logprob;
      x.rm_score = s.rm_score;
      x.policy_checkpoint_id = spec->policy_id;
      x.rm_checkpoint_id = spec->rm_id;
      x.temperature = static_cast<float>(spec->temperature);
      x.seed = s.seed;
      x.task_id = task.id;
      x.created_ms = env.now;
      const double score = x.rm_score.value_or(-1e300);
      auto it = best.find(x.prompt_id);
      if (it == best.end() || score > it->second.first) best[x.prompt_id] = {score, samples.size()};
      samples.push_back(std::move(x));
    }
    for (auto& [pid, b] : best) samples[b.second].selected = true;
    for (const auto& x : samples) txn.PutSample(x);
    txn.AddCounter(CounterKey("samples", task.run, static_cast<uint32_t>(task.round)),
                   static_cast<int64_t>(samples.size()));
    return Status::Ok();
  }

  // Done when every task is; the figures compare best-of-K with a random
  // draw (sample 0: the draws are exchangeable).
  Result<Verdict> Check(RunView& v, const std::vector<Task>& tasks) override {
    if (!std::all_of(tasks.begin(), tasks.end(), [](const Task& t) { return t.state == TaskState::kSucceeded; })) {
      return Verdict::Waiting();
    }
    double best = 0, random = 0;
    int64_t prompts = 0, samples = 0;
    HERD_RETURN_IF_ERROR(v.store->ForEachSample(v.run.id, v.r(), [&](const stores::Sample& s) {
      ++samples;
      if (s.selected && s.rm_score) {
        best += *s.rm_score;
        ++prompts;
      }
      if (s.idx == 0 && s.rm_score) random += *s.rm_score;
      return true;
    }));
    nlohmann::json m = {{"samples", samples}, {"prompts", prompts}};
    if (prompts > 0) {
      m["best_of_k_rm_score"] = best / static_cast<double>(prompts);
      m["random_rm_score"] = random / static_cast<double>(prompts);
    }
    return Verdict::Finished("", m.dump());
  }
};

}  // namespace

Stage* RejectionSamplingStage() {
  static RejectionSampling s;
  return &s;
}

}  // namespace herd::daemon::stages
