// dpo: Direct Preference Optimization on the preference pairs of the latest
// rounds (Llama 3 §4.1.4), from this round's SFT model, which is also the
// frozen reference; formatting tokens masked, 0.2 × NLL on the chosen
// response. The trained model is the round's policy. Skipped when DPO is
// off: the SFT model is then the policy.
#include <nlohmann/json.hpp>

#include "daemon/stages/training.h"
#include "stores/store.h"
#include "tasks/datasets.h"
#include "tasks/protocol.h"

namespace herd::daemon::stages {
namespace {

class Dpo final : public TrainingStage {
 public:
  const char* name() const override { return "dpo"; }

  Result<Plan> Start(RunView& v) override {
    const DpoConfig& dc = v.cfg.dpo;
    const std::string& run = v.run.id;
    const uint32_t r = v.r();
    if (!dc.enabled) {
      HERD_ASSIGN_OR_RETURN(std::string sft, v.LastGood(kSft));
      return Plan::Finished(sft, nlohmann::json{{"skipped", true}}.dump());
    }
    const uint32_t first = r > static_cast<uint32_t>(dc.recent_rounds)
                               ? r - static_cast<uint32_t>(dc.recent_rounds) + 1
                               : 1;
    std::vector<std::string> rows;
    std::vector<stores::DatasetMember> members;
    HERD_RETURN_IF_ERROR(v.store->ForEachPair(run, std::nullopt, [&](const stores::Pair& p) {
      if (p.round < first || p.round > r) return true;
      rows.push_back(tasks::Encode(PairRowOf(p)));
      members.push_back({run, r, "dpo", p.round, p.id, 0});
      return true;
    }));
    if (rows.empty()) return Plan::Failed("no preference pairs for DPO");
    HERD_ASSIGN_OR_RETURN(std::string dataset, v.DatasetPath("dpo-r" + std::to_string(r)));
    HERD_RETURN_IF_ERROR(WriteDataset(dataset, rows));
    HERD_ASSIGN_OR_RETURN(const std::string sft, v.LastGood(kSft));
    tasks::TrainSpec proto;
    HERD_ASSIGN_OR_RETURN(proto.base, v.PathOf(sft));
    proto.ref = proto.base;  // the SFT model is also the frozen reference
    proto.dataset = dataset;
    proto.parents = {sft};
    proto.datasets = {"dpo:r" + std::to_string(r)};
    proto.beta = dc.beta;
    proto.nll_alpha = dc.nll_alpha;
    proto.mask_formatting = dc.mask_formatting;
    proto.strengths = dc.strengths;
    proto.text = v.Text();
    return StartVariants(v, tasks::kTrainDpo, proto, std::move(members));
  }

 protected:
  const StageConfig& Config(const RunConfig& cfg) const override { return cfg.dpo; }
};

}  // namespace

Stage* DpoStage() {
  static Dpo s;
  return &s;
}

}  // namespace herd::daemon::stages
