#pragma once
// Real herdd processes for integration tests: started on 127.0.0.1 port 0
// (or another --listen) in a fresh data dir, found through DIR/herdd.addr,
// spoken to over http (or https, trusting a CA file), killed with SIGTERM
// or SIGKILL, restarted on the same data dir.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "tests/testing/temp_dir.h"

namespace herd::testing {

// Runs a shell command: {exit status, stdout and stderr together}.
inline std::pair<int, std::string> Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

inline std::string BinaryPath(const std::string& name) {
  std::string dir = HERD_BINARY_DIR;
  if (name == "herdd") return dir + "/daemon/herdd";
  if (name == "herd-worker") return dir + "/workers/herd-worker";
  if (name == "herd-model") return dir + "/workers/herd-model";
  return dir + "/api/herdctl";
}

// A labeling tool that prefers response a, "better", on every pending
// annotation request of the run. A request answered twice (a race with a
// restart) gets 409, which is fine for the tests that use it.
inline void AnswerPendingRequests(api::HttpClient& c, const std::string& run, const std::string& annotator) {
  auto reqs = api::GetJson(c, "/v1/runs/" + run + "/annotation-requests?state=pending");
  if (!reqs.ok()) return;
  for (const auto& q : (*reqs)["annotation_requests"]) {
    const std::string id = q["id"];
    (void)c.Request("POST", "/v1/runs/" + run + "/annotation-requests/" + id + ":answer",
                    R"({"choice":"a","strength":"better","annotator":")" + annotator + "\"}");
  }
}

class HerddProcess {
 public:
  explicit HerddProcess(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  ~HerddProcess() { Kill(SIGKILL); }

  // Before Start: herdd serves https (the test passes --tls-cert and
  // --tls-key); clients trust ca_file.
  void UseTls(std::string ca_file) {
    scheme_ = "https";
    ca_file_ = std::move(ca_file);
  }
  // Before Start: the --listen address. Default: 127.0.0.1:0.
  void SetListen(std::string listen) { listen_ = std::move(listen); }

  // Starts herdd and waits (up to 20 s) until it serves /healthz.
  bool Start(std::vector<std::string> extra = {}) {
    std::filesystem::create_directories(data_dir_);
    std::filesystem::remove(data_dir_ + "/herdd.addr");
    std::vector<std::string> args = {
        BinaryPath("herdd"), "--data-dir", data_dir_, "--listen", listen_, "--log-level", "warn"};
    for (auto& e : extra) args.push_back(e);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log = data_dir_ + "/herdd.log";
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "a", stderr);
      (void)f;
      if (nofile_limit_ > 0) {
        rlimit rl{static_cast<rlim_t>(nofile_limit_), static_cast<rlim_t>(nofile_limit_)};
        setrlimit(RLIMIT_NOFILE, &rl);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream f(data_dir_ + "/herdd.addr");
      std::string addr;
      if (f >> addr) {
        // A wildcard address is dialled on loopback.
        if (addr.rfind("0.0.0.0:", 0) == 0) addr = "127.0.0.1" + addr.substr(7);
        url_ = scheme_ + "://" + addr;
        auto c = Client();
        if (c) {
          auto r = c->Request("GET", "/healthz");
          if (r.ok() && r->status == 200) return true;
        }
      }
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Sends sig and waits for the exit; returns the exit status (or 128+sig).
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

  std::unique_ptr<api::HttpClient> Client(const std::string& token = "") const {
    api::ClientOptions o;
    o.base_url = url_;
    o.token = token;
    o.ca_file = ca_file_;
    o.timeout = std::chrono::milliseconds(60000);
    auto c = api::HttpClient::Create(o);
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // Starts herdd with this hard (and soft) RLIMIT_NOFILE; 0 = inherit.
  void set_nofile_limit(uint64_t n) { nofile_limit_ = n; }

  const std::string& url() const { return url_; }
  const std::string& ca_file() const { return ca_file_; }
  // The exit status of a herdd that exited during Start (-1 otherwise).
  int exit_status() const { return exit_status_; }
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }
  std::string Log() const {
    std::ifstream f(data_dir_ + "/herdd.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

 private:
  std::string data_dir_;
  std::string listen_ = "127.0.0.1:0";
  std::string scheme_ = "http";
  std::string ca_file_;
  std::string url_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
  uint64_t nofile_limit_ = 0;
};

}  // namespace herd::testing
