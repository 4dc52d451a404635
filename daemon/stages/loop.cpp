// The loop of one round, in order. Adding a stage is adding its file and
// one line here (and its name to kStages in daemon/orchestrator.h).
#include "daemon/stages/stage.h"

namespace herd::daemon::stages {

Stage* CollectStage();             // collect.cpp
Stage* RewardModelStage();         // reward_model.cpp
Stage* RejectionSamplingStage();   // rejection_sampling.cpp
Stage* SftStage();                 // sft.cpp
Stage* DpoStage();                 // dpo.cpp
Stage* EvalStage();                // eval.cpp

const std::vector<Stage*>& Loop() {
  static const std::vector<Stage*> k = {CollectStage(), RewardModelStage(), RejectionSamplingStage(),
                                        SftStage(),     DpoStage(),         EvalStage()};
  return k;
}

Stage* Find(const std::string& name) {
  for (Stage* s : Loop()) {
    if (name == s->name()) return s;
  }
  return nullptr;
}

}  // namespace herd::daemon::stages
