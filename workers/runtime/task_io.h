#pragma once
// What the task handlers share: chat messages from the task contracts, and
// loading/saving models as HF checkpoints.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tasks/common.h"
#include "workers/model/chat_format.h"
#include "workers/model/llama.h"

namespace herd::worker {

// A contract's messages → chat messages; errors (an unknown role) name `what`.
Result<std::vector<model::ChatMessage>> ChatMessages(const std::vector<tasks::Message>& messages,
                                                     const std::string& what);

// A model loaded from an HF checkpoint directory with activations for
// (max_batch, max_seq). as_reward_model turns a causal LM into a reward
// model: the backbone is loaded, lm_head is dropped, and the scalar head
// score.weight starts at zero (or is loaded when the checkpoint has it).
Result<std::unique_ptr<model::LlamaModel>> LoadModel(const std::string& dir, int64_t max_batch,
                                                     int64_t max_seq, bool as_reward_model = false);

// Saves the model as an HF checkpoint (fp32, with herd's tokenizer files and
// generation config) and describes it for the task's result.
Result<tasks::CheckpointInfo> SaveModel(model::LlamaModel& m, const std::string& dir);

// sha256 digest of a directory's files (stable across copies), its size
// and its config.json's digest.
Result<tasks::CheckpointInfo> DescribeCheckpoint(const std::string& dir);

}  // namespace herd::worker
