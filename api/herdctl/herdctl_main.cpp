// herdctl: the command-line client of herdd's REST API.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"herdctl: control herd runs through herdd's REST API"};
  app.set_version_flag("--version", std::string("herdctl ") + herd::kVersion);
  std::string url = "http://127.0.0.1:8080";
  std::string token_file;
  bool json = false;
  app.add_option("--url", url, "herdd base URL")->capture_default_str();
  app.add_option("--token-file", token_file, "file holding a bearer token");
  app.add_flag("--json", json, "machine-readable output");
  app.require_subcommand(1);
  app.add_subcommand("runs", "create, list, inspect and steer runs");
  app.add_subcommand("annotations", "upload human preference annotations (JSONL)");
  app.add_subcommand("requests", "list pending annotation requests");
  app.add_subcommand("samples", "export samples");
  CLI11_PARSE(app, argc, argv);
  std::fprintf(stderr, "herdctl %s: this command is not built yet (see the API issue)\n",
               herd::kVersion);
  return 2;
}
