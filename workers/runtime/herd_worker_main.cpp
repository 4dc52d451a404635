// herd-worker: leases tasks from herdd and runs them on a CPU or a GPU.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "common/log.h"
#include "common/version.h"
#include "kernels/cuda/runtime.h"
#include "workers/runtime/handlers.h"
#include "workers/runtime/worker.h"

namespace {
herd::worker::Worker* g_worker = nullptr;
void OnSignal(int) {
  if (g_worker) g_worker->Stop();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herd-worker: runs herd's training and sampling tasks"};
  app.set_version_flag("--version", [] {
    return std::string("herd-worker ") + herd::kVersion + " (" +
           herd::cuda::LinkedLibraryVersions() + ")";
  });
  herd::worker::WorkerOptions o;
  std::string token_file;
  std::string log_level = "info";
  app.add_option("--daemon", o.daemon_url,
                 "herdd base URL, e.g. http://127.0.0.1:8080 or https://herd.example.com:8443")
      ->required();
  app.add_option("--ca-file", o.ca_file,
                 "https: PEM certificates to trust (herdd's CA, or its self-signed certificate). "
                 "Default: the system's CAs");
  app.add_option("--device", o.device, "cpu | cuda:N")->capture_default_str();
  app.add_option("--token-file", token_file, "file holding this worker's bearer token");
  app.add_option("--name", o.name, "name shown in GET /v1/workers. Default: host-pid");
  app.add_option("--lease-wait-ms", o.lease_wait_ms, "long-poll length")->capture_default_str();
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "heartbeat period")->capture_default_str();
  app.add_option("--max-tasks", o.max_tasks, "exit after N tasks (0 = never)")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    herd::InitLogging("herd-worker", log_level);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herd-worker: %s\n", e.what());
    return 2;
  }
  if (o.device != "cpu" && o.device.rfind("cuda:", 0) != 0) {
    spdlog::error("--device: expected cpu or cuda:N, got '{}'", o.device);
    return 2;
  }
  if (o.device.rfind("cuda:", 0) == 0) {
    std::string why;
    if (herd::cuda::DeviceCount(&why) == 0) {
      spdlog::error("--device {}: no CUDA device: {}", o.device, why);
      return 2;
    }
  }
  if (!token_file.empty()) {
    std::ifstream f(token_file);
    if (!f) {
      spdlog::error("--token-file: cannot read '{}'", token_file);
      return 2;
    }
    std::getline(f, o.token);
    while (!o.token.empty() && (o.token.back() == '\r' || o.token.back() == ' ')) o.token.pop_back();
  }

  if (!o.ca_file.empty() && o.daemon_url.rfind("https://", 0) != 0) {
    spdlog::warn("--ca-file is ignored: --daemon {} is not https://", o.daemon_url);
  }

  herd::worker::Worker worker(o);
  herd::worker::AddBuiltinHandlers(worker);
  herd::worker::AddEngineHandlers(worker);
  g_worker = &worker;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  herd::Status s = worker.Run();
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  return 0;
}
