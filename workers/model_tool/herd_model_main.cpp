// herd-model: offline tools for model directories and files (docs/checkpoints.md):
//   herd-model import FILE.gguf OUT_DIR     a llama.cpp GGUF → an HF checkpoint
//   herd-model inspect DIR|FILE.gguf        config, tensors, tokenizer, chat template
//   herd-model tokenize DIR < text          ids as a JSON array
//   herd-model generate DIR --messages F    an answer, with the checkpoint's chat template
// Exit 0 on success, 1 when the command failed, 2 for a bad command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "common/version.h"
#include "workers/model_tool/commands.h"

namespace herd::model_tool {

void Fail(const std::string& what) {
  std::fprintf(stderr, "herd-model: %s\n", what.c_str());
  throw CommandFailed{1};
}

}  // namespace herd::model_tool

int main(int argc, char** argv) {
  CLI::App app{"herd-model: import, inspect, tokenize with and generate from models (HF checkpoint directories, GGUF files)"};
  app.set_version_flag("--version", std::string("herd-model ") + herd::kVersion);
  app.require_subcommand(1);
  herd::model_tool::AddImportCommand(app);
  herd::model_tool::AddInspectCommand(app);
  herd::model_tool::AddTokenizeCommand(app);
  herd::model_tool::AddGenerateCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, the version or the usage error
    return rc == 0 ? 0 : 2;
  } catch (const herd::model_tool::CommandFailed& f) {
    return f.exit_code;
  } catch (const std::exception& e) {
    // e.g. a GGUF whose metadata strings are not UTF-8, met while printing
    // them as JSON: a failed command, never a crash.
    std::fprintf(stderr, "herd-model: %s\n", e.what());
    return 1;
  }
  return 0;
}
