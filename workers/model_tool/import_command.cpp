// herd-model import FILE.gguf OUT_DIR [--overwrite]: a llama.cpp GGUF
// (Llama architecture, byte-level BPE vocabulary) → an F32 HF checkpoint
// directory that herd and transformers load. See docs/checkpoints.md.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "workers/model/checkpoint.h"
#include "workers/model/chat_format.h"
#include "workers/model/gguf_import.h"
#include "workers/model_tool/commands.h"
#include "workers/model_tool/format.h"

namespace herd::model_tool {
namespace {

struct ImportArgs {
  std::string gguf;
  std::string out_dir;
  bool overwrite = false;  // Default: false (an existing OUT_DIR is an error)
};

void RunImport(const ImportArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  model::ImportOptions options;
  options.overwrite = a.overwrite;
  auto r = model::ImportGguf(a.gguf, a.out_dir, options);
  if (!r.ok()) {
    std::string hint =
        r.status().code() == Status::Code::kAlreadyExists ? " (--overwrite replaces it)" : "";
    Fail("import failed: " + r.status().message() + hint);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const model::GgufImportSummary& s = *r;
  const model::HfTokenizerFiles& t = s.tokenizer;
  std::printf("imported %s -> %s\n", a.gguf.c_str(), a.out_dir.c_str());
  std::printf("  tensors    %lld GGUF (%s) -> %zu HF tensors, F32\n",
              static_cast<long long>(s.gguf_tensors), CountsText(s.types).c_str(),
              model::LlamaTensorShapes(s.config).size());
  std::printf("  config     llama %s\n", ConfigLine(s.config).c_str());
  std::printf("  tokenizer  %s/%s, %lld tokens, %lld merges, %lld added tokens\n", t.model.c_str(),
              t.pre.c_str(), static_cast<long long>(t.vocab_size), static_cast<long long>(t.merges),
              static_cast<long long>(t.added_tokens));
  std::printf("  chat       %s\n", model::DescribeChatTemplate(t.chat_template).c_str());
  std::printf("  time       %.2f s\n", secs);
}

}  // namespace

void AddImportCommand(CLI::App& app) {
  auto args = std::make_shared<ImportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "import", "convert a llama.cpp GGUF (Llama) into an HF checkpoint directory");
  cmd->add_option("gguf", args->gguf, "the .gguf file")->required()->check(CLI::ExistingFile);
  cmd->add_option("out_dir", args->out_dir, "the checkpoint directory to write")->required();
  cmd->add_flag("--overwrite", args->overwrite, "replace OUT_DIR if it exists (atomically)");
  cmd->callback([args] { RunImport(*args); });
}

}  // namespace herd::model_tool
