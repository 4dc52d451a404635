#include "daemon/local_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace herd::daemon {

LocalWorkers::LocalWorkers(LocalWorkersOptions opts) : opts_(std::move(opts)) {}

LocalWorkers::~LocalWorkers() { Stop(); }

pid_t LocalWorkers::Spawn(int index) {
  std::vector<std::string> args = {opts_.binary, "--daemon", opts_.daemon_url, "--device", "cpu",
                                   "--name", "local-" + std::to_string(index)};
  if (!opts_.token_file.empty()) {
    args.push_back("--token-file");
    args.push_back(opts_.token_file);
  }
  if (!opts_.ca_file.empty()) {
    args.push_back("--ca-file");
    args.push_back(opts_.ca_file);
  }
  for (const auto& a : opts_.extra_args) args.push_back(a);
  std::string log = opts_.log_dir.empty() ? "" : opts_.log_dir + "/worker-" + std::to_string(index) + ".log";
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls are allowed in a multithreaded process.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // Child: its own process group, so a terminal's ^C reaches herdd only;
    // and it dies with herdd (even kill -9), so no orphan polls a dead port.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);  // herdd died before prctl took effect
    if (!log.empty()) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
      }
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid < 0) spdlog::error("fork for local worker {} failed: {}", index, std::strerror(errno));
  else spdlog::info("local worker {} started pid={}", index, pid);
  return pid;
}

void LocalWorkers::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < opts_.count; ++i) pids_.push_back(Spawn(i));
  }
  supervisor_ = std::thread([this] { Supervise(); });
}

void LocalWorkers::Supervise() {
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard<std::mutex> l(mu_);
    for (size_t i = 0; i < pids_.size(); ++i) {
      if (pids_[i] <= 0 || stop_) continue;
      int status = 0;
      pid_t r = waitpid(pids_[i], &status, WNOHANG);
      if (r != pids_[i]) continue;
      spdlog::warn("local worker {} pid={} exited ({} {}); restarting", i, pids_[i],
                   WIFSIGNALED(status) ? "signal" : "status",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      std::this_thread::sleep_for(std::chrono::milliseconds(opts_.restart_backoff_ms));
      if (stop_) break;
      pids_[i] = Spawn(static_cast<int>(i));
      ++restarts_;
    }
  }
}

void LocalWorkers::Stop(int grace_ms) {
  if (stop_.exchange(true)) return;
  if (supervisor_.joinable()) supervisor_.join();
  std::lock_guard<std::mutex> l(mu_);
  for (pid_t p : pids_) if (p > 0) kill(p, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (pid_t& p : pids_) {
    while (p > 0) {
      int st = 0;
      if (waitpid(p, &st, WNOHANG) == p) {
        p = 0;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(p, SIGKILL);
        waitpid(p, &st, 0);
        p = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

std::vector<pid_t> LocalWorkers::pids() const {
  std::lock_guard<std::mutex> l(mu_);
  return pids_;
}

}  // namespace herd::daemon
