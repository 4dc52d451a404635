#pragma once
// --local-workers N: herdd spawns N herd-worker processes on loopback and
// keeps them running (a worker that exits is restarted after a backoff),
// so the embedded default speaks the same protocol as a cluster.
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace herd::daemon {

struct LocalWorkersOptions {
  std::string binary;             // path to herd-worker (required)
  std::string daemon_url;         // http(s)://127.0.0.1:PORT (required)
  std::string token_file;         // passed as --token-file when set. Default: ""
  std::string ca_file;            // passed as --ca-file when set (https). Default: ""
  std::string log_dir;            // each worker's stderr goes to <log_dir>/worker-<i>.log; "" = inherit
  std::vector<std::string> extra_args;  // appended to every worker's command line
  int count = 0;                  // Default: 0
  int restart_backoff_ms = 1000;  // Default: 1 s
};

class LocalWorkers {
 public:
  explicit LocalWorkers(LocalWorkersOptions opts);
  ~LocalWorkers();
  void Start();
  // SIGTERM to every worker, then SIGKILL after grace_ms; joins the supervisor.
  void Stop(int grace_ms = 5000);
  std::vector<pid_t> pids() const;
  int restarts() const { return restarts_.load(); }

 private:
  pid_t Spawn(int index);
  void Supervise();

  LocalWorkersOptions opts_;
  mutable std::mutex mu_;
  std::vector<pid_t> pids_;
  std::atomic<bool> stop_{false};
  std::atomic<int> restarts_{0};
  std::thread supervisor_;
};

}  // namespace herd::daemon
