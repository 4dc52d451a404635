#include "daemon/task.h"

namespace herd::daemon {

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kQueued: return "queued";
    case TaskState::kLeased: return "leased";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kFailed: return "failed";
    case TaskState::kCancelled: return "cancelled";
  }
  return "unknown";
}

bool ParseTaskState(const std::string& s, TaskState* out) {
  for (TaskState t : {TaskState::kQueued, TaskState::kLeased, TaskState::kSucceeded,
                      TaskState::kFailed, TaskState::kCancelled}) {
    if (s == TaskStateName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace herd::daemon
