#include "workers/runtime/handlers.h"

namespace herd::worker {

// The handlers land as the engine pieces do (docs/tasks.md). Until one is
// registered, a task of its kind fails for good with a clear message
// ("this worker has no handler for task kind ...").
void AddEngineHandlers(Worker&) {}

}  // namespace herd::worker
