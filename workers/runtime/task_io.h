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

// The chat formatter of the checkpoint a task reads (its tokenizer.json and
// chat template), with the run's overrides (spec.text).
Result<model::ChatFormatter> LoadFormatter(const std::string& checkpoint_dir,
                                           const tasks::TextFormat& text);

// Saves the model as an HF checkpoint (fp32) that carries the text files of
// the checkpoint it was trained from (`source_dir`): the formatter's
// tokenizer.json, source's tokenizer_config.json and chat_template.jinja
// (the template replaced by herd's rendering of `text.chat_format` when the
// run overrides it), and a generation config that stops on the format's
// end of turn. An empty source_dir: a model trained from scratch, with the
// formatter's files only. Seals it (SealCheckpoint) for the task's result.
Result<tasks::CheckpointInfo> SaveModel(model::LlamaModel& m, const std::string& dir,
                                        const model::ChatFormatter& format,
                                        const std::string& source_dir,
                                        const tasks::TextFormat& text);

// sha256 digest of a directory's files (stable across copies; the
// checksums file left out), its size and its config.json's digest.
Result<tasks::CheckpointInfo> DescribeCheckpoint(const std::string& dir);

// Every checkpoint herd writes carries kChecksumsFile: one line per file,
// "<sha256 hex>  <relative path>", the format `sha256sum -c` reads.
inline constexpr const char* kChecksumsFile = "checksums.sha256";
// Writes dir's checksums file (atomically) and describes the checkpoint.
Result<tasks::CheckpointInfo> SealCheckpoint(const std::string& dir);
// Checks every file the checksums file lists. A missing or changed file is
// DataLoss "corrupt checkpoint <dir>: <file>: ..." (tasks/protocol.h
// kCorruptCheckpoint: herdd finds the checkpoint by that text and retries
// the stage from the last good one). A directory without a checksums file
// (a user's model) passes unchecked.
Status VerifyCheckpoint(const std::string& dir);

}  // namespace herd::worker
