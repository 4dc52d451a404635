// reward_model: a reward model on all the preference pairs so far (Llama 3
// §4.1.2), from the pre-trained checkpoint or the previous round's RM. A
// seeded share of the pairs is held out for RM accuracy and, for greedy
// averaging, another share to choose the average by. A pair's share
// depends on its id only, so it never moves between rounds.
#include <algorithm>

#include "daemon/stages/training.h"
#include "stores/store.h"
#include "tasks/datasets.h"
#include "tasks/protocol.h"

namespace herd::daemon::stages {
namespace {

class RewardModel final : public TrainingStage {
 public:
  const char* name() const override { return "rm"; }

  Result<Plan> Start(RunView& v) override {
    const auto& rmc = v.cfg.reward_model;
    const std::string& run = v.run.id;
    const uint32_t r = v.r();
    const bool greedy = rmc.averaging == "greedy";
    std::vector<std::string> rows, heldout, val;
    std::vector<stores::DatasetMember> members;
    HERD_RETURN_IF_ERROR(v.store->ForEachPair(run, std::nullopt, [&](const stores::Pair& p) {
      if (p.round > r) return true;
      double u = static_cast<double>(Hash64(run + "/heldout/" + p.id) % 1000000) / 1e6;
      // Held out pairs of the training strengths only: accuracy on
      // "marginally better" coin flips says nothing about the RM.
      const bool trained = std::find(rmc.strengths.begin(), rmc.strengths.end(), p.strength) != rmc.strengths.end();
      if (u < rmc.held_out_fraction) {
        if (!trained) return true;
        heldout.push_back(tasks::Encode(PairRowOf(p)));
        members.push_back({run, r, "rm_heldout", p.round, p.id, 0});
      } else if (greedy && u < rmc.held_out_fraction + rmc.val_fraction) {
        if (!trained) return true;
        val.push_back(tasks::Encode(PairRowOf(p)));
        members.push_back({run, r, "rm_val", p.round, p.id, 0});
      } else {
        rows.push_back(tasks::Encode(PairRowOf(p)));
        members.push_back({run, r, "rm", p.round, p.id, 0});
      }
      return true;
    }));
    HERD_ASSIGN_OR_RETURN(std::string heldout_path, RmHeldoutPath(v));
    HERD_RETURN_IF_ERROR(WriteDataset(heldout_path, heldout));
    if (greedy) {
      HERD_ASSIGN_OR_RETURN(std::string vp, v.DatasetPath("rm-val-r" + std::to_string(r)));
      HERD_RETURN_IF_ERROR(WriteDataset(vp, val));
    }
    if (rows.empty()) return Plan::Failed("no preference pairs to train the reward model on");
    HERD_ASSIGN_OR_RETURN(std::string dataset, v.DatasetPath("rm-r" + std::to_string(r)));
    HERD_RETURN_IF_ERROR(WriteDataset(dataset, rows));
    // The RM starts from the pre-trained checkpoint, or goes on from the
    // previous round's RM.
    std::string base_id = v.base_checkpoint_id;
    if (rmc.init == "previous" && r > 1) {
      HERD_ASSIGN_OR_RETURN(stores::Round prev, v.store->GetRound(run, r - 1));
      base_id = prev.stages[kRm].checkpoint_id;
    }
    tasks::TrainSpec proto;
    HERD_ASSIGN_OR_RETURN(proto.base, v.PathOf(base_id));
    proto.dataset = dataset;
    proto.parents = {base_id};
    proto.datasets = {"rm:r" + std::to_string(r)};
    proto.strengths = rmc.strengths;
    proto.margin = rmc.margin;
    proto.heldout = heldout_path;
    proto.text = v.Text();
    return StartVariants(v, tasks::kTrainRm, proto, std::move(members));
  }

 protected:
  const StageConfig& Config(const RunConfig& cfg) const override { return cfg.reward_model; }

  // Greedy averaging chooses by accuracy on the round's validation pairs.
  Result<std::optional<tasks::AverageSelect>> Select(RunView& v, const tasks::TrainSpec& spec0) override {
    if (v.cfg.reward_model.averaging != "greedy") return std::optional<tasks::AverageSelect>();
    tasks::AverageSelect sel;
    HERD_ASSIGN_OR_RETURN(sel.dataset, v.DatasetPath("rm-val-r" + std::to_string(v.r())));
    sel.strengths = v.cfg.reward_model.strengths;
    sel.batch_rows = spec0.hparams.batch_rows;
    sel.seq_len = spec0.hparams.seq_len;
    return std::optional<tasks::AverageSelect>(std::move(sel));
  }
};

}  // namespace

Stage* RewardModelStage() {
  static RewardModel s;
  return &s;
}

Result<std::string> RmHeldoutPath(const RunView& v) {
  return v.DatasetPath("rm-heldout-r" + std::to_string(v.r()));
}

}  // namespace herd::daemon::stages
