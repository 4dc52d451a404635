#pragma once
// average: the variants a training stage trained, averaged into one model
// (Llama 3 §4.1.5), uniformly by `weights` or, with `select`, greedily: the
// inputs best first, each kept only if the average's pair accuracy on the
// selection pairs does not drop (reward models only).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"
#include "tasks/train.h"

namespace herd::tasks {

struct AverageSelect {
  std::string dataset;              // required: JSONL of PairRow to choose by
  std::vector<std::string> strengths = DefaultTrainedStrengths();  // Default: significantly_better, better
  int64_t batch_rows = kDefaultBatchRows;  // rows per accuracy batch. Default: 8
  int64_t seq_len = kDefaultSeqLen;        // Default: 512
  bool operator==(const AverageSelect&) const = default;
};

struct AverageSpec {
  std::vector<std::string> inputs;  // required, non-empty: checkpoint directories
  std::vector<double> weights;      // one per input. Default: uniform
  std::string out;                  // required: the checkpoint directory to write
  std::string checkpoint_id;        // required: herdd's id for `out`
  std::vector<std::string> parents;   // lineage: the inputs' checkpoint ids. Default: none
  std::vector<std::string> datasets;  // lineage. Default: none
  std::optional<AverageSelect> select;  // greedy averaging. Default: none (uniform)
  bool operator==(const AverageSpec&) const = default;
};

struct AverageResult {
  CheckpointInfo checkpoint;        // required
  // The weights as applied, one per input (0 for one greedy averaging left
  // out). Default: empty = the spec's weights
  std::vector<double> weights;
  nlohmann::json metrics = nlohmann::json::object();  // Default: {}
};

std::string Encode(const AverageSpec& s);
std::string Encode(const AverageResult& r);
Result<AverageSpec> DecodeAverageSpec(const std::string& text);
Result<AverageSpec> DecodeAverageSpec(const nlohmann::json& j);
nlohmann::json ToJson(const AverageSpec& x);
nlohmann::json ToJson(const AverageResult& x);
Result<AverageResult> DecodeAverageResult(const std::string& text);

}  // namespace herd::tasks
