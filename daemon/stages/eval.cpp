// eval: the round's policy on the eval prompts, against the previous
// round's policy and the base, with the run's checker, and this round's
// reward model on its held-out pairs. Its figures are the round's report.
#include <algorithm>

#include "daemon/stages/stage.h"
#include "tasks/eval.h"
#include "tasks/protocol.h"

namespace herd::daemon::stages {

namespace {

class Eval final : public Stage {
 public:
  const char* name() const override { return "eval"; }

  Result<Plan> Start(RunView& v) override {
    const RunConfig& cfg = v.cfg;
    HERD_ASSIGN_OR_RETURN(auto prompts, SelectPrompts(v.store, v.run.id, "eval", cfg.eval.prompts, "eval"));
    HERD_ASSIGN_OR_RETURN(std::string prev, v.PolicyOf(v.r() - 1));
    tasks::EvalSpec spec;
    HERD_ASSIGN_OR_RETURN(std::string policy, v.LastGood(kDpo));
    HERD_ASSIGN_OR_RETURN(std::string rm, v.LastGood(kRm));
    HERD_ASSIGN_OR_RETURN(spec.policy, v.PathOf(policy));
    HERD_ASSIGN_OR_RETURN(spec.previous, v.PathOf(prev));
    HERD_ASSIGN_OR_RETURN(spec.base, v.PathOf(v.base_checkpoint_id));
    HERD_ASSIGN_OR_RETURN(spec.rm, v.PathOf(rm));
    HERD_ASSIGN_OR_RETURN(spec.rm_heldout, RmHeldoutPath(v));
    spec.prompts = TaskPrompts(prompts, 0, prompts.size());
    spec.checker = cfg.eval.checker;
    spec.samples_per_prompt = cfg.eval.samples_per_prompt;
    spec.max_new_tokens = cfg.rejection_sampling.max_new_tokens;
    spec.temperature = cfg.rejection_sampling.temperature;
    spec.seed = Hash64(v.Salt() + "/eval");
    spec.text = v.Text();
    Plan plan;
    plan.tasks.push_back(v.NewTask(name(), tasks::kEval, tasks::Encode(spec)));
    return plan;
  }

  // The figures are read in Check; nothing to store per task.
  Status Apply(const ApplyEnv&, stores::WriteTxn&, const Task& task) override {
    if (task.kind != tasks::kEval) return Status::Ok();
    auto res = tasks::DecodeEvalResult(task.result);
    return res.ok() ? Status::Ok() : BadResult(task, res.status().message());
  }

  Result<Verdict> Check(RunView&, const std::vector<Task>& tasks) override {
    if (!std::all_of(tasks.begin(), tasks.end(), [](const Task& t) { return t.state == TaskState::kSucceeded; })) {
      return Verdict::Waiting();
    }
    if (tasks.empty()) return Verdict::Finished("", "{}");
    HERD_ASSIGN_OR_RETURN(tasks::EvalResult res, tasks::DecodeEvalResult(tasks[0].result));
    return Verdict::Finished("", res.metrics.dump());
  }
};

}  // namespace

Stage* EvalStage() {
  static Eval s;
  return &s;
}

}  // namespace herd::daemon::stages
