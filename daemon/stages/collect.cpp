// collect: human preference data for the round (Llama 3 §4.2.1). Two
// different recent models answer the same train prompts; each pair of
// answers becomes an annotation request, and the stage waits for enough
// answers (uploads count too) before the reward model trains.
#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "daemon/stages/stage.h"
#include "stores/store.h"
#include "tasks/generate.h"
#include "tasks/protocol.h"

namespace herd::daemon::stages {
namespace {

class Collect final : public Stage {
 public:
  const char* name() const override { return "collect"; }

  Result<Plan> Start(RunView& v) override {
    const RunConfig& cfg = v.cfg;
    HERD_ASSIGN_OR_RETURN(auto prompts,
                          SelectPrompts(v.store, v.run.id, "train", cfg.annotation.comparisons_per_round,
                                        v.Salt() + "/collect", /*repeat=*/true));
    if (cfg.annotation.comparisons_per_round == 0 || prompts.empty()) {
      return Plan::Finished("", nlohmann::json{{"requests", 0}}.dump());
    }
    // Two different recent models: this round's policy and the one before
    // it; in round 1 only the base exists, sampled twice.
    const uint32_t r = v.r();
    HERD_ASSIGN_OR_RETURN(std::string a, v.PolicyOf(r - 1));
    HERD_ASSIGN_OR_RETURN(std::string b, v.PolicyOf(r >= 2 ? r - 2 : 0));
    HERD_ASSIGN_OR_RETURN(std::string pa, v.PathOf(a));
    HERD_ASSIGN_OR_RETURN(std::string pb, v.PathOf(b));
    Plan plan;
    const size_t per = static_cast<size_t>(cfg.rejection_sampling.prompts_per_task);
    for (size_t b0 = 0; b0 < prompts.size(); b0 += per) {
      tasks::GenerateSpec spec;
      spec.policies = {pa, pb};
      spec.policy_ids = {a, b};
      spec.prompts = TaskPrompts(prompts, b0, b0 + per);
      spec.temperature = cfg.annotation.temperature;
      spec.top_p = 1.0;
      spec.max_new_tokens = cfg.annotation.max_new_tokens;
      spec.seed = Hash64(v.Salt() + "/collect/" + std::to_string(b0));
      spec.text = v.Text();
      plan.tasks.push_back(v.NewTask(name(), tasks::kGenerate, tasks::Encode(spec)));
    }
    return plan;
  }

  // Each prompt's two answers become an annotation request, shown in a
  // seeded order so position says nothing about the model.
  Status Apply(const ApplyEnv& env, stores::WriteTxn& txn, const Task& task) override {
    if (task.kind != tasks::kGenerate) return Status::Ok();
    auto spec = tasks::DecodeGenerateSpec(task.spec);
    if (!spec.ok()) return BadResult(task, spec.status().message());
    auto res = tasks::DecodeGenerateResult(task.result);
    if (!res.ok()) return BadResult(task, res.status().message());
    std::map<std::string, const tasks::Prompt*> prompts;
    for (const auto& p : spec->prompts) prompts[p.id] = &p;
    int64_t created = 0;
    for (const auto& r : res->responses) {
      auto pit = prompts.find(r.prompt_id);
      if (pit == prompts.end()) return BadResult(task, "unknown prompt_id '" + r.prompt_id + "'");
      if (r.a == r.b) continue;  // nothing to compare
      stores::AnnotationRequest q;
      q.run_id = task.run;
      HERD_ASSIGN_OR_RETURN(q.id, env.store->NewId("req"));
      q.round = static_cast<uint32_t>(task.round);
      q.prompt_id = r.prompt_id;
      for (const auto& m : pit->second->messages) q.prompt.push_back({m.role, m.content});
      const bool swap = Hash64(task.run + r.prompt_id + std::to_string(task.round)) & 1;
      q.response_a = swap ? r.b : r.a;
      q.response_b = swap ? r.a : r.b;
      if (spec->policy_ids.size() == 2) {
        q.checkpoint_a = spec->policy_ids[swap ? 1 : 0];
        q.checkpoint_b = spec->policy_ids[swap ? 0 : 1];
      }
      q.state = "pending";
      q.created_ms = env.now;
      txn.PutAnnotationRequest(q);
      ++created;
    }
    txn.AddCounter(CounterKey("requests", task.run, static_cast<uint32_t>(task.round)), created);
    return Status::Ok();
  }

  // Done once every generate task finished and enough requests are
  // answered: min_answers, or every request when fewer were made.
  Result<Verdict> Check(RunView& v, const std::vector<Task>& tasks) override {
    if (!std::all_of(tasks.begin(), tasks.end(), [](const Task& t) { return t.state == TaskState::kSucceeded; })) {
      return Verdict::Waiting();
    }
    HERD_ASSIGN_OR_RETURN(uint64_t answers, v.store->GetCounter(CounterKey("answers", v.run.id, v.r())));
    HERD_ASSIGN_OR_RETURN(uint64_t requests, v.store->GetCounter(CounterKey("requests", v.run.id, v.r())));
    HERD_ASSIGN_OR_RETURN(uint64_t expired, v.store->GetCounter(CounterKey("expired", v.run.id, v.r())));
    // Expired requests will never be answered: wait only for the others.
    const uint64_t open = requests - std::min(requests, expired);
    const uint64_t need = std::min<uint64_t>(static_cast<uint64_t>(v.cfg.annotation.min_answers), open);
    if (answers < need) return Verdict::Waiting();  // waiting for humans
    return Verdict::Finished(
        "", nlohmann::json{{"requests", requests}, {"answers", answers}, {"expired", expired}}.dump());
  }
};

}  // namespace

Stage* CollectStage() {
  static Collect s;
  return &s;
}

}  // namespace herd::daemon::stages
