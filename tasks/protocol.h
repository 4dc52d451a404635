#pragma once
// The task protocol between herdd and herd-worker: the version both sides
// speak and the kinds of task (one header each in tasks/). A task's spec
// and result travel as JSON; each kind's header owns its fields, their
// defaults and their Encode/Decode, so the daemon, the worker and the tests
// all use the same structs.
#include <string>

#include "common/status.h"

namespace herd::tasks {

// Bumped whenever a spec or result changes shape. A worker sends its
// version when it registers; herdd refuses a different one, and the worker
// refuses a herdd that answers with a different one.
inline constexpr int kProtocolVersion = 1;

// The task kinds ("kind" of a task on the wire and in the store).
inline constexpr const char* kGenerate = "generate";                // generate.h
inline constexpr const char* kRejectionSample = "rejection_sample"; // rejection_sample.h
inline constexpr const char* kTrainRm = "train_rm";                 // train.h
inline constexpr const char* kTrainSft = "train_sft";               // train.h
inline constexpr const char* kTrainDpo = "train_dpo";               // train.h
inline constexpr const char* kAverage = "average";                  // average.h
inline constexpr const char* kEval = "eval";                        // eval.h

// A task that could not load an input checkpoint because a file of it
// changed or vanished fails (not retryable) with an error that contains
// kCorruptCheckpointPrefix + <the checkpoint directory as in the spec> +
// ": " + <the file and what is wrong>. herdd marks that checkpoint corrupt
// and starts the stage again from the last good one (docs/tasks.md).
inline constexpr const char* kCorruptCheckpointPrefix = "corrupt checkpoint ";

// OK when `theirs` is kProtocolVersion; otherwise FailedPrecondition saying
// which side (`who`: "worker", "herdd") speaks what and what to do.
Status CheckProtocol(int theirs, const std::string& who);

}  // namespace herd::tasks
