#pragma once
// The engine's task handlers (docs/tasks.md).
#include "workers/runtime/worker.h"

namespace herd::worker {

// train_sft, train_rm, train_dpo, average (train_handlers.cpp).
void AddTrainHandlers(Worker& w);
// generate, rejection_sample, eval (generate_handlers.cpp).
void AddGenerateHandlers(Worker& w);

inline void AddEngineHandlers(Worker& w) {
  AddTrainHandlers(w);
  AddGenerateHandlers(w);
}

}  // namespace herd::worker
