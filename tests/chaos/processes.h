#pragma once
// herdd and herd-worker processes for the crash loop and the fault tests:
// herdd on one data dir and, after its first start on port 0, always the
// same port, so restarted herdds are found where clients and workers
// already look; workers are separate processes (not herdd's local ones),
// so they live through herdd's deaths as a cluster's would.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "api/client/client.h"
#include "common/status.h"

namespace herd::chaos {

class Processes {
 public:
  Processes(std::string build_dir, std::string dir) : build_(std::move(build_dir)), dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_ + "/data");
  }
  ~Processes() {
    for (auto& [i, pid] : workers_) Stop(pid, SIGKILL);
    Stop(herdd_, SIGKILL);
  }
  Processes(const Processes&) = delete;
  Processes& operator=(const Processes&) = delete;

  // Extra herdd flags for every start (added after the defaults).
  std::vector<std::string> herdd_args = {"--lease-ttl-ms", "3000", "--restart-grace-ms", "3000"};
  std::vector<std::string> worker_args = {"--lease-wait-ms", "1000", "--heartbeat-ms", "300"};

  // Starts herdd and waits until it serves /healthz (up to 30 s). A restart
  // uses the first start's port, retrying while the old socket lingers.
  Status StartHerdd() {
    const std::string data = dir_ + "/data";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::filesystem::remove(data + "/herdd.addr");
      std::vector<std::string> args = {Bin("daemon/herdd"), "--data-dir", data, "--listen",
                                       "127.0.0.1:" + std::to_string(port_), "--log-level", "warn"};
      args.insert(args.end(), herdd_args.begin(), herdd_args.end());
      herdd_ = Spawn(args, dir_ + "/herdd.log");
      while (std::chrono::steady_clock::now() < deadline) {
        int st = 0;
        if (waitpid(herdd_, &st, WNOHANG) == herdd_) {  // could not bind yet
          herdd_ = -1;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          break;
        }
        std::ifstream f(data + "/herdd.addr");
        std::string addr;
        if (f >> addr) {
          if (port_ == 0) port_ = std::stoi(addr.substr(addr.rfind(':') + 1));
          if (Healthy()) return Status::Ok();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return Status::Unavailable("herdd did not start on port " + std::to_string(port_) + " (log: " + dir_ +
                               "/herdd.log)");
  }

  Status StartWorker(int i) {
    if (port_ == 0) return Status::FailedPrecondition("start herdd first");
    std::vector<std::string> args = {Bin("workers/herd-worker"), "--daemon", url(), "--name",
                                     "chaos-w" + std::to_string(i), "--log-level", "warn"};
    args.insert(args.end(), worker_args.begin(), worker_args.end());
    workers_[i] = Spawn(args, dir_ + "/worker" + std::to_string(i) + ".log");
    return workers_[i] > 0 ? Status::Ok() : Status::Internal("fork failed");
  }

  void KillHerdd() { Stop(herdd_, SIGKILL); }
  void KillWorker(int i) { Stop(workers_[i], SIGKILL); }
  // SIGSTOP / SIGCONT a worker (a partition: alive but silent).
  void SignalWorker(int i, int sig) { kill(workers_[i], sig); }
  pid_t herdd_pid() const { return herdd_; }
  pid_t worker_pid(int i) const { return workers_.count(i) ? workers_.at(i) : -1; }

  // Processes that exited on their own since the last call, described.
  std::vector<std::string> Reap() {
    std::vector<std::string> out;
    auto check = [&](pid_t& pid, const std::string& name) {
      int st = 0;
      if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
        out.push_back(name + " exited by itself (" +
                      (WIFEXITED(st) ? "status " + std::to_string(WEXITSTATUS(st))
                                     : "signal " + std::to_string(WTERMSIG(st))) +
                      ")");
        pid = -1;
      }
    };
    check(herdd_, "herdd");
    for (auto& [i, pid] : workers_) check(pid, "worker " + std::to_string(i));
    return out;
  }

  bool Healthy() const {
    api::ClientOptions co;
    co.base_url = url();
    co.timeout = std::chrono::milliseconds(2000);
    auto c = api::HttpClient::Create(co);
    if (!c.ok()) return false;
    auto r = (*c)->Request("GET", "/healthz");
    return r.ok() && r->status == 200;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string data_dir() const { return dir_ + "/data"; }
  const std::string& dir() const { return dir_; }

 private:
  std::string Bin(const std::string& rel) const { return build_ + "/" + rel; }

  static pid_t Spawn(std::vector<std::string> args, const std::string& log) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);  // else the child's freopen writes the parent's pending output again
    pid_t pid = fork();
    if (pid == 0) {
      FILE* f = freopen(log.c_str(), "a", stderr);
      (void)f;
      f = freopen("/dev/null", "w", stdout);
      (void)f;
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }

  static void Stop(pid_t& pid, int sig) {
    if (pid <= 0) return;
    kill(pid, SIGCONT);  // a stopped process must run to die of SIGTERM
    kill(pid, sig);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }

  std::string build_, dir_;
  int port_ = 0;
  pid_t herdd_ = -1;
  std::map<int, pid_t> workers_;
};

}  // namespace herd::chaos
