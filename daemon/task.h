#pragma once
// Tasks and workers as the scheduler sees them. Plain data; the store
// persists them and the API turns them into wire JSON.
#include <cstdint>
#include <string>

#include "daemon/clock.h"
#include "stores/records.h"
#include "tasks/common.h"

namespace herd::daemon {

// The store's task states: the scheduler's tasks are persisted as they are.
using stores::TaskState;
using stores::TaskStateName;   // "queued", "leased", ...
using stores::ParseTaskState;
inline bool IsTerminal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kFailed || s == TaskState::kCancelled;
}

// What a task needs of the worker that runs it (tasks/common.h).
using Requirements = tasks::Requirements;

struct Task {
  std::string id;                 // issued by the scheduler
  std::string run;                // owning run, "" for none
  int64_t round = 0;              // 1-based round, 0 for none
  std::string stage;              // orchestrator stage that owns it
  std::string kind;               // train_rm | rejection_sample | train_sft | train_dpo | average | eval | noop
  std::string spec;               // JSON text the handler reads
  int32_t priority = 0;           // higher leases first. Default: 0
  uint64_t seq = 0;               // submission order, FIFO among equal priority
  Requirements needs;
  TaskState state = TaskState::kQueued;
  int32_t attempt = 0;            // leases granted so far
  int32_t max_attempts = 3;       // Default: 3
  Millis not_before = 0;          // retry backoff: not leased before this time
  std::string lease_id;           // current (or last) lease: the fence for results
  std::string worker_id;
  Millis lease_expires = 0;
  Millis leased_ms = 0;           // when the current lease was granted (not persisted)
  std::string progress;           // last heartbeat's progress JSON
  std::string result;             // completion JSON
  std::string error;              // last failure reason
  bool cancel_requested = false;
  Millis created_ms = 0;
  Millis updated_ms = 0;
};

struct WorkerInfo {
  std::string id;                 // issued at registration
  std::string name;               // host/pid as the worker reports it
  std::string device = "cpu";     // "cpu" | "cuda"
  int64_t memory_bytes = 0;
  std::string version;
  int protocol = 0;               // task protocol it speaks (tasks/protocol.h); 0 = unversioned
  Millis registered_ms = 0;
  Millis last_seen_ms = 0;
};

inline bool Satisfies(const WorkerInfo& w, const Requirements& r) {
  return w.device == r.device && w.memory_bytes >= r.min_memory_bytes;
}

}  // namespace herd::daemon
