#pragma once
// herd-model's subcommands, one file each (import_command.cpp,
// inspect_command.cpp, ...); herd_model_main.cpp adds them all. A command
// prints its own output; on failure it prints "herd-model: <why>" to stderr
// and throws CommandFailed, which main turns into exit code 1 (usage errors
// are CLI11's and exit 2).
#include <CLI/CLI.hpp>
#include <string>

namespace herd::model_tool {

void AddImportCommand(CLI::App& app);
void AddInspectCommand(CLI::App& app);
void AddTokenizeCommand(CLI::App& app);  // text_commands.cpp
void AddGenerateCommand(CLI::App& app);  // text_commands.cpp

// Prints "herd-model: what" to stderr and ends the command with exit code 1.
[[noreturn]] void Fail(const std::string& what);

// Thrown by Fail; carries the exit code.
struct CommandFailed {
  int exit_code = 1;
};

}  // namespace herd::model_tool
