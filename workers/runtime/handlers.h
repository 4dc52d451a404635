#pragma once
// The engine's task handlers (docs/tasks.md): train_rm, rejection_sample,
// train_sft, train_dpo, average, eval, generate.
#include "workers/runtime/worker.h"

namespace herd::worker {

void AddEngineHandlers(Worker& w);

}  // namespace herd::worker
