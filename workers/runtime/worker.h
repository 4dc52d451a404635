#pragma once
// The herd-worker process: register with herdd, long-poll for a lease, run
// the task's handler while a heartbeat thread reports progress, deliver the
// result. Stateless: killing it loses at most the task in flight, which
// herdd retries when the lease lapses.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace herd::worker {

struct WorkerOptions {
  std::string daemon_url;            // http(s)://host:port (required)
  std::string ca_file;               // https: PEM certificates to trust. Default: "" (system CAs)
  std::string token;                 // bearer token. Default: "" (no auth)
  std::string device = "cpu";        // "cpu" | "cuda:N". Default: cpu
  std::string name;                  // Default: hostname-pid
  int64_t memory_bytes = 0;          // advertised. Default: physical memory
  int64_t lease_wait_ms = 10'000;    // long poll. Default: 10 s
  int64_t heartbeat_ms = 3'000;      // Default: 3 s (the lease TTL is 15 s)
  int64_t retry_ms = 1'000;          // first reconnect delay, doubling to 30 s. Default: 1 s
  int max_tasks = 0;                 // exit after this many tasks, 0 = never. Default: 0
};

// What a handler sees of its task.
class TaskContext {
 public:
  TaskContext(std::string id, std::string kind, nlohmann::json spec)
      : id_(std::move(id)), kind_(std::move(kind)), spec_(std::move(spec)) {}
  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  const nlohmann::json& spec() const { return spec_; }

  // Latest progress (step, total_steps, loss, tokens_per_s, …); the
  // heartbeat thread sends the newest one. Cheap: call it every step.
  void Report(nlohmann::json progress);
  nlohmann::json TakeProgress(bool* changed);
  // True once herdd asked to cancel or the lease was lost: stop soon and
  // return an Aborted status.
  bool ShouldStop() const { return stop_.load(); }
  void RequestStop() { stop_ = true; }

 private:
  std::string id_, kind_;
  nlohmann::json spec_;
  std::mutex mu_;
  nlohmann::json progress_;
  bool changed_ = false;
  std::atomic<bool> stop_{false};
};

// A handler returns the task's result object or an error. InvalidArgument
// (a bad spec, bad data) fails the task for good; anything else is retried.
using Handler = std::function<Result<nlohmann::json>(TaskContext&)>;

class Worker {
 public:
  explicit Worker(WorkerOptions opts);
  ~Worker();
  void AddHandler(const std::string& kind, Handler h);
  // Serves until Stop() or max_tasks; returns non-OK only for a
  // configuration error (e.g. a refused registration).
  Status Run();
  void Stop() { stop_ = true; }
  // Runs one task in-process, without herdd (tests; `herd-worker --run-task`).
  Result<nlohmann::json> RunLocal(const std::string& kind, const nlohmann::json& spec);
  int tasks_done() const { return tasks_done_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  WorkerOptions opts_;
  std::map<std::string, Handler> handlers_;
  std::atomic<bool> stop_{false};
  std::atomic<int> tasks_done_{0};
};

// Handlers every worker has: "noop" (spec.sleep_ms), used by scheduler
// tests and benchmarks.
void AddBuiltinHandlers(Worker& w);

}  // namespace herd::worker
