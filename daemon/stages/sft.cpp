// sft: supervised fine-tuning on the accumulated best-of-K samples of
// every round so far (Llama 3 §4.1.3), from the pre-trained checkpoint.
// Skipped when rejection sampling is off: the previous policy carries over.
#include <map>

#include <nlohmann/json.hpp>

#include "daemon/stages/training.h"
#include "stores/store.h"
#include "tasks/datasets.h"
#include "tasks/protocol.h"

namespace herd::daemon::stages {
namespace {

class Sft final : public TrainingStage {
 public:
  const char* name() const override { return "sft"; }

  Result<Plan> Start(RunView& v) override {
    const std::string& run = v.run.id;
    const uint32_t r = v.r();
    if (!v.cfg.rejection_sampling.enabled) {
      // Ablation without rejection sampling: no SFT data; the previous
      // policy carries over and DPO trains from it.
      HERD_ASSIGN_OR_RETURN(std::string prev, v.PolicyOf(r - 1));
      return Plan::Finished(prev, nlohmann::json{{"skipped", true}}.dump());
    }
    std::map<std::string, stores::Prompt> prompts;
    HERD_RETURN_IF_ERROR(v.store->ForEachPrompt(run, [&](const stores::Prompt& p) {
      prompts[p.id] = p;
      return true;
    }));
    std::vector<std::string> rows;
    std::vector<stores::DatasetMember> members;
    HERD_RETURN_IF_ERROR(v.store->ForEachSample(run, std::nullopt, [&](const stores::Sample& s) {
      if (!s.selected || s.round > r) return true;
      auto it = prompts.find(s.prompt_id);
      if (it == prompts.end()) return true;
      tasks::ConversationRow row;
      row.id = s.prompt_id + "/r" + std::to_string(s.round) + "/" + std::to_string(s.idx);
      row.messages = TaskMessages(it->second.messages);
      row.messages.push_back({"assistant", s.text});
      rows.push_back(tasks::Encode(row));
      members.push_back({run, r, "sft", s.round, s.prompt_id, s.idx});
      return true;
    }));
    if (rows.empty()) return Plan::Failed("no selected samples to fine-tune on");
    HERD_ASSIGN_OR_RETURN(std::string dataset, v.DatasetPath("sft-r" + std::to_string(r)));
    HERD_RETURN_IF_ERROR(WriteDataset(dataset, rows));
    tasks::TrainSpec proto;
    HERD_ASSIGN_OR_RETURN(proto.base, v.PathOf(v.base_checkpoint_id));  // SFT restarts from the pre-trained model
    proto.dataset = dataset;
    proto.parents = {v.base_checkpoint_id};
    proto.datasets = {"sft:r" + std::to_string(r)};
    proto.text = v.Text();
    return StartVariants(v, tasks::kTrainSft, proto, std::move(members));
  }

 protected:
  const StageConfig& Config(const RunConfig& cfg) const override { return cfg.sft; }
};

}  // namespace

Stage* SftStage() {
  static Sft s;
  return &s;
}

}  // namespace herd::daemon::stages
