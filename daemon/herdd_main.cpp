// herdd: the herd daemon. Composition root: wires stores/, daemon/ and api/.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

#include "common/log.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"herdd: runs the Llama 3 post-training loop as a service"};
  app.set_version_flag("--version", std::string("herdd ") + herd::kVersion);
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";
  int local_workers = 0;
  std::string auth_file;
  std::string log_level = "info";
  app.add_option("--data-dir", data_dir, "RocksDB and artifact directory")->required();
  app.add_option("--listen", listen, "HOST:PORT to serve the REST API on; port 0 picks one")
      ->capture_default_str();
  app.add_option("--local-workers", local_workers, "herd-worker processes to spawn on loopback")
      ->capture_default_str();
  app.add_option("--auth-file", auth_file, "bearer tokens and roles; required off loopback");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  herd::InitLogging("herdd", log_level);
  spdlog::error("herdd {}: the daemon is not built yet (see the daemon issue)", herd::kVersion);
  return 2;
}
