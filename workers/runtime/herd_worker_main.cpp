// herd-worker: leases tasks from herdd and runs them on a CPU or a GPU.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <string>

#include "common/log.h"
#include "common/version.h"
#include "kernels/cuda/runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"herd-worker: runs herd's training and sampling tasks"};
  app.set_version_flag("--version", [] {
    return std::string("herd-worker ") + herd::kVersion + " (" +
           herd::cuda::LinkedLibraryVersions() + ")";
  });
  std::string daemon_url;
  std::string device = "cpu";
  std::string token_file;
  std::string log_level = "info";
  app.add_option("--daemon", daemon_url, "herdd base URL, e.g. http://127.0.0.1:8080")->required();
  app.add_option("--device", device, "cpu | cuda:N")->capture_default_str();
  app.add_option("--token-file", token_file, "file holding this worker's bearer token");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  herd::InitLogging("herd-worker", log_level);
  spdlog::error("herd-worker {}: the lease loop is not built yet (see the daemon issue)",
                herd::kVersion);
  return 2;
}
