#include "daemon/scheduler.h"

#include <algorithm>
#include <chrono>

namespace herd::daemon {

Scheduler::Scheduler(const Clock* clock, IdSource* ids, SchedulerOptions opts)
    : clock_(clock), ids_(ids), opts_(opts) {}

void Scheduler::Restore(std::vector<Task> tasks, uint64_t next_seq) {
  std::lock_guard<std::mutex> l(mu_);
  const Millis now = clock_->NowMs();
  tasks_.clear();
  queue_.clear();
  lease_index_.clear();
  retired_.clear();
  next_seq_ = next_seq;
  for (Task& t : tasks) {
    next_seq_ = std::max(next_seq_, t.seq + 1);
    if (!t.lease_id.empty()) retired_[t.lease_id] = t.id;
    if (t.state == TaskState::kLeased) {
      retired_.erase(t.lease_id);
      // Give the worker that holds it a window to re-attach by heartbeat.
      t.lease_expires = now + opts_.restart_grace_ms;
      lease_index_[t.lease_id] = t.id;
    } else if (t.state == TaskState::kQueued) {
      queue_.emplace(-t.priority, t.seq, t.id);
    }
    std::string id = t.id;
    tasks_[id] = std::move(t);
  }
}

Millis Scheduler::Backoff(int attempt) const {
  Millis d = opts_.backoff_base_ms;
  for (int i = 1; i < attempt && d < opts_.backoff_max_ms; ++i) d *= 2;
  return std::min(d, opts_.backoff_max_ms);
}

Result<std::vector<Task>> Scheduler::CommitLocked(std::vector<Task> changed,
                                                  const CommitFn& commit) {
  const Millis now = clock_->NowMs();
  std::vector<TaskChange> changes;
  changes.reserve(changed.size());
  for (Task& t : changed) {
    t.updated_ms = now;
    auto it = tasks_.find(t.id);
    changes.push_back({it == tasks_.end() ? std::nullopt : std::optional<Task>(it->second), t});
  }
  if (commit) HERD_RETURN_IF_ERROR(commit(changes));
  std::vector<Task> terminal;
  bool wake = false;
  for (Task& t : changed) {
    auto it = tasks_.find(t.id);
    if (it != tasks_.end()) {
      const Task& old = it->second;
      if (old.state == TaskState::kQueued) queue_.erase({-old.priority, old.seq, old.id});
      if (old.state == TaskState::kLeased &&
          (old.lease_id != t.lease_id || t.state != TaskState::kLeased)) {
        lease_index_.erase(old.lease_id);
        retired_[old.lease_id] = old.id;
      }
    }
    if (t.state == TaskState::kQueued) {
      queue_.emplace(-t.priority, t.seq, t.id);
      wake = true;
    }
    if (t.state == TaskState::kLeased) lease_index_[t.lease_id] = t.id;
    if (IsTerminal(t.state) && (it == tasks_.end() || !IsTerminal(it->second.state))) {
      terminal.push_back(t);
    }
    tasks_[t.id] = t;
  }
  if (wake) work_cv_.notify_all();
  return terminal;
}

void Scheduler::Notify(const std::vector<Task>& terminal) {
  std::function<void(const Task&)> fn;
  {
    std::lock_guard<std::mutex> l(mu_);
    fn = on_terminal_;
  }
  if (!fn) return;
  for (const Task& t : terminal) fn(t);
}

Result<std::vector<Task>> Scheduler::Submit(std::vector<Task> tasks, const CommitFn& commit) {
  std::vector<Task> out;
  {
    std::lock_guard<std::mutex> l(mu_);
    const Millis now = clock_->NowMs();
    uint64_t seq = next_seq_;
    for (Task& t : tasks) {
      if (t.kind.empty()) return Status::InvalidArgument("task.kind: required");
      if (t.max_attempts < 1) return Status::InvalidArgument("task.max_attempts: must be >= 1");
      t.id = ids_->NewId();
      t.seq = seq++;
      t.state = TaskState::kQueued;
      t.attempt = 0;
      t.created_ms = now;
    }
    auto r = CommitLocked(tasks, commit);
    if (!r.ok()) return r.status();
    next_seq_ = seq;
    out = std::move(tasks);
  }
  return out;
}

Result<std::optional<Task>> Scheduler::TryLeaseLocked(const WorkerInfo& w,
                                                      const CommitFn& commit) {
  const Millis now = clock_->NowMs();
  for (const auto& entry : queue_) {
    const std::string id = std::get<2>(entry);  // a copy: the commit erases the entry
    const Task& t = tasks_.at(id);
    if (t.not_before > now || !Satisfies(w, t.needs) || paused_runs_.count(t.run)) continue;
    Task leased = t;
    leased.state = TaskState::kLeased;
    leased.attempt += 1;
    leased.lease_id = ids_->NewId();
    leased.worker_id = w.id;
    leased.lease_expires = now + opts_.lease_ttl_ms;
    leased.leased_ms = now;
    leased.progress.clear();
    auto r = CommitLocked({leased}, commit);
    if (!r.ok()) return r.status();
    return std::optional<Task>(tasks_.at(id));
  }
  return std::optional<Task>();
}

Result<std::optional<Task>> Scheduler::Lease(const WorkerInfo& worker, Millis wait_ms,
                                             const CommitFn& commit) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    if (shutdown_) return std::optional<Task>();
    auto r = TryLeaseLocked(worker, commit);
    if (!r.ok() || r->has_value()) return r;
    // Wake on new work, or poll at most every 200 ms for backoffs that end.
    auto next = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() >= deadline) return std::optional<Task>();
    work_cv_.wait_until(l, next);
  }
}

Task* Scheduler::ByLeaseLocked(const std::string& lease_id) {
  auto it = lease_index_.find(lease_id);
  if (it == lease_index_.end()) return nullptr;
  return &tasks_.at(it->second);
}

LeaseCheck Scheduler::CheckLease(const std::string& lease_id, Task* out) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = lease_index_.find(lease_id);
  if (it != lease_index_.end()) {
    if (out) *out = tasks_.at(it->second);
    return LeaseCheck::kCurrent;
  }
  auto r = retired_.find(lease_id);
  if (r == retired_.end()) return LeaseCheck::kUnknown;
  if (out) *out = tasks_.at(r->second);
  return LeaseCheck::kStale;
}

Result<HeartbeatReply> Scheduler::Heartbeat(const std::string& lease_id,
                                            const std::string& progress_json) {
  std::lock_guard<std::mutex> l(mu_);
  Task* t = ByLeaseLocked(lease_id);
  if (!t) return Status::FailedPrecondition("lease " + lease_id + " is not current");
  const Millis now = clock_->NowMs();
  if (t->lease_expires < now) {
    return Status::FailedPrecondition("lease " + lease_id + " expired");
  }
  // Heartbeats are not persisted: after a restart, leases get a grace window.
  t->lease_expires = now + opts_.lease_ttl_ms;
  if (!progress_json.empty()) t->progress = progress_json;
  t->updated_ms = now;
  return HeartbeatReply{t->cancel_requested, t->lease_expires};
}

Result<CompleteOutcome> Scheduler::Complete(const std::string& lease_id,
                                            const std::string& result_json,
                                            const CommitFn& commit) {
  std::vector<Task> terminal;
  {
    std::lock_guard<std::mutex> l(mu_);
    Task* t = ByLeaseLocked(lease_id);
    if (!t) {
      auto r = retired_.find(lease_id);
      if (r != retired_.end()) {
        const Task& task = tasks_.at(r->second);
        if (task.lease_id == lease_id && task.state == TaskState::kSucceeded) {
          return CompleteOutcome::kAlreadyDone;  // a retried completion
        }
      }
      return Status::FailedPrecondition("lease " + lease_id + " is not current");
    }
    Task done = *t;
    done.state = TaskState::kSucceeded;
    done.result = result_json;
    done.error.clear();
    auto r = CommitLocked({done}, commit);
    if (!r.ok()) return r.status();
    terminal = std::move(r).value();
  }
  Notify(terminal);
  return CompleteOutcome::kCompleted;
}

Status Scheduler::Fail(const std::string& lease_id, const std::string& error, bool retryable,
                       const CommitFn& commit) {
  std::vector<Task> terminal;
  {
    std::lock_guard<std::mutex> l(mu_);
    Task* t = ByLeaseLocked(lease_id);
    if (!t) return Status::FailedPrecondition("lease " + lease_id + " is not current");
    Task f = *t;
    f.error = error;
    if (f.cancel_requested) {
      f.state = TaskState::kCancelled;
    } else if (retryable && f.attempt < f.max_attempts) {
      f.state = TaskState::kQueued;
      f.not_before = clock_->NowMs() + Backoff(f.attempt);
      ++retries_;
    } else {
      f.state = TaskState::kFailed;
    }
    auto r = CommitLocked({f}, commit);
    if (!r.ok()) return r.status();
    terminal = std::move(r).value();
  }
  Notify(terminal);
  return Status::Ok();
}

Result<int> Scheduler::ExpireLeases(const CommitFn& commit) {
  std::vector<Task> terminal;
  int n = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    const Millis now = clock_->NowMs();
    std::vector<Task> changed;
    for (const auto& [lease, id] : lease_index_) {
      const Task& t = tasks_.at(id);
      if (t.lease_expires >= now) continue;
      Task e = t;
      e.error = "lease " + lease + " expired (no heartbeat from worker " + t.worker_id + ")";
      if (e.cancel_requested) {
        e.state = TaskState::kCancelled;
      } else if (e.attempt < e.max_attempts) {
        e.state = TaskState::kQueued;
        e.not_before = now + Backoff(e.attempt);
        ++retries_;
      } else {
        e.state = TaskState::kFailed;
      }
      changed.push_back(std::move(e));
    }
    if (changed.empty()) return 0;
    n = static_cast<int>(changed.size());
    auto r = CommitLocked(std::move(changed), commit);
    if (!r.ok()) return r.status();
    terminal = std::move(r).value();
  }
  Notify(terminal);
  return n;
}

Status Scheduler::CancelRun(const std::string& run, const CommitFn& commit) {
  std::vector<Task> terminal;
  {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Task> changed;
    for (const auto& [id, t] : tasks_) {
      if (t.run != run || IsTerminal(t.state)) continue;
      Task c = t;
      if (t.state == TaskState::kQueued) {
        c.state = TaskState::kCancelled;
      } else if (!t.cancel_requested) {
        c.cancel_requested = true;
      } else {
        continue;
      }
      changed.push_back(std::move(c));
    }
    if (changed.empty()) return Status::Ok();
    auto r = CommitLocked(std::move(changed), commit);
    if (!r.ok()) return r.status();
    terminal = std::move(r).value();
  }
  Notify(terminal);
  return Status::Ok();
}

Status Scheduler::Retry(const std::string& task_id, int32_t extra_attempts,
                        const CommitFn& commit) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return Status::NotFound("task " + task_id);
  const Task& t = it->second;
  if (t.state != TaskState::kFailed && t.state != TaskState::kCancelled) {
    return Status::FailedPrecondition("task " + task_id + " is " + TaskStateName(t.state) +
                                      "; only failed or cancelled tasks can be retried");
  }
  Task q = t;
  q.state = TaskState::kQueued;
  q.max_attempts = t.attempt + std::max<int32_t>(1, extra_attempts);
  q.not_before = 0;
  q.cancel_requested = false;
  auto r = CommitLocked({q}, commit);
  return r.ok() ? Status::Ok() : r.status();
}

void Scheduler::SetRunPaused(const std::string& run, bool paused) {
  std::lock_guard<std::mutex> l(mu_);
  if (paused) {
    paused_runs_.insert(run);
  } else {
    paused_runs_.erase(run);
    work_cv_.notify_all();
  }
}

void Scheduler::Shutdown() {
  std::lock_guard<std::mutex> l(mu_);
  shutdown_ = true;
  work_cv_.notify_all();
}

std::optional<Task> Scheduler::Get(const std::string& task_id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return std::nullopt;
  return it->second;
}

std::vector<Task> Scheduler::List(const std::function<bool(const Task&)>& filter) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Task> out;
  for (const auto& [id, t] : tasks_) {
    if (!filter || filter(t)) out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const Task& a, const Task& b) { return a.seq < b.seq; });
  return out;
}

TaskCounts Scheduler::Counts() const {
  std::lock_guard<std::mutex> l(mu_);
  TaskCounts c;
  for (const auto& [id, t] : tasks_) c.by_kind_state[{t.kind, TaskStateName(t.state)}] += 1;
  return c;
}

uint64_t Scheduler::next_seq() const {
  std::lock_guard<std::mutex> l(mu_);
  return next_seq_;
}

void Scheduler::SetTerminalListener(std::function<void(const Task&)> fn) {
  std::lock_guard<std::mutex> l(mu_);
  on_terminal_ = std::move(fn);
}

}  // namespace herd::daemon
