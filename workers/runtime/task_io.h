#pragma once
// What the task handlers share: spec field readers whose errors name the
// field, JSONL datasets, and loading/saving models as HF checkpoints.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/model/chat_format.h"
#include "workers/model/llama.h"

namespace herd::worker {

// spec.<field> as a string / number; InvalidArgument "spec.dataset: ..." when
// missing or mistyped.
Result<std::string> SpecString(const nlohmann::json& spec, const char* field);
double SpecNumber(const nlohmann::json& spec, const char* field, double fallback);

// Reads every line of a JSONL file; errors name the file and line.
Result<std::vector<nlohmann::json>> ReadJsonl(const std::string& path);

// [{"role","content"}…] → chat messages; errors name `what`.
Result<std::vector<model::ChatMessage>> ChatMessages(const nlohmann::json& messages,
                                                     const std::string& what);

// A model loaded from an HF checkpoint directory with activations for
// (max_batch, max_seq). as_reward_model turns a causal LM into a reward
// model: the backbone is loaded, lm_head is dropped, and the scalar head
// score.weight starts at zero (or is loaded when the checkpoint has it).
Result<std::unique_ptr<model::LlamaModel>> LoadModel(const std::string& dir, int64_t max_batch,
                                                     int64_t max_seq, bool as_reward_model = false);

// Saves the model as an HF checkpoint (fp32, with herd's tokenizer files and
// generation config) and returns the result's "checkpoint" object:
// {sha256 (of the directory), size_bytes, config_sha256}.
Result<nlohmann::json> SaveModel(model::LlamaModel& m, const std::string& dir);

// sha256 digest of a directory's files (stable across copies) and its size.
Result<nlohmann::json> DescribeCheckpoint(const std::string& dir);

}  // namespace herd::worker
