#include "workers/runtime/handlers.h"

namespace herd::worker {

// Until the generation handlers land, a task of their kinds fails for good
// with "this worker has no handler for task kind ...".
void AddGenerateHandlers(Worker&) {}

}  // namespace herd::worker
