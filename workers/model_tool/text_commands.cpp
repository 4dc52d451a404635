// herd-model tokenize DIR and herd-model generate DIR: a checkpoint's text
// side as herd's workers see it (its tokenizer.json and chat template, read
// by LoadChatFormatter) and greedy or sampled generation on the paged
// generator. See docs/checkpoints.md.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "workers/generate/generator.h"
#include "workers/generate/paged_llama.h"
#include "workers/model/chat_format.h"
#include "workers/model/checkpoint.h"
#include "workers/model/hf_tokenizer.h"
#include "workers/model/llama.h"
#include "workers/model_tool/commands.h"

namespace herd::model_tool {
namespace {

using nlohmann::json;

model::ChatFormatter Formatter(const std::string& dir, const std::string& chat_format) {
  auto f = model::LoadChatFormatter(dir, {"", chat_format});
  if (!f.ok()) Fail(f.status().message());
  return *std::move(f);
}

// ---- tokenize --------------------------------------------------------------

struct TokenizeArgs {
  std::string dir;
  bool parse_special = false;  // Default: false (special-token text is text)
};

void RunTokenize(const TokenizeArgs& a) {
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  model::EncodeOptions o;
  o.parse_special = a.parse_special;
  const model::ChatFormatter f = Formatter(a.dir, "");
  std::printf("%s\n", json(f.tokenizer().Encode(text, o)).dump().c_str());
}

// ---- generate --------------------------------------------------------------

struct GenerateArgs {
  std::string dir;
  std::string messages;        // a JSON file: [{role, content}, ...]
  int max_new_tokens = 64;     // Default: 64
  double temperature = 0.0;    // Default: 0 (greedy)
  double top_p = 1.0;          // Default: 1 (off)
  uint64_t seed = 1;           // Default: 1
  std::string chat_format;     // Default: "" (the checkpoint's template)
  bool json_out = false;       // Default: false (the text alone)
};

std::vector<model::ChatMessage> ReadMessages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(path + ": cannot open");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array() || j.empty()) Fail(path + ": expected a non-empty JSON array of {role, content}");
  std::vector<model::ChatMessage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string where = path + ": [" + std::to_string(i) + "]";
    const json& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      Fail(where + ": expected {\"role\": string, \"content\": string}");
    }
    auto role = model::ParseRole(m["role"].get<std::string>());
    if (!role.ok()) Fail(where + ".role: " + role.status().message());
    out.push_back({*role, m["content"].get<std::string>()});
  }
  return out;
}

void RunGenerate(const GenerateArgs& a) {
  const auto messages = ReadMessages(a.messages);
  const model::ChatFormatter f = Formatter(a.dir, a.chat_format);
  model::ChatFormatOptions fo;
  fo.add_generation_prompt = true;
  auto prompt = f.Format(messages, fo);
  if (!prompt.ok()) Fail(prompt.status().message());

  auto cfg = model::LoadCheckpointConfig(a.dir);
  if (!cfg.ok()) Fail(cfg.status().message());
  auto weights = model::LlamaModel::Create(*cfg, 1, 8);  // holds the weights; the generator has its own KV
  if (!weights.ok()) Fail(weights.status().message());
  if (auto s = model::LoadCheckpointInto(a.dir, (*weights)->ParamViews()); !s.ok()) Fail(s.message());
  auto paged = generate::PagedLlama::Create(*cfg, (*weights)->ParamViews());
  if (!paged.ok()) Fail(paged.status().message());
  generate::GeneratorOptions go;
  go.kv_budget_bytes = 256ll << 20;
  auto gen = generate::Generator::Create(&*paged, go);
  if (!gen.ok()) Fail(gen.status().message());

  generate::GenerationRequest r;
  r.prompt = prompt->ids;
  r.num_samples = 1;
  r.sampling.temperature = static_cast<float>(a.temperature);
  r.sampling.top_p = static_cast<float>(a.top_p);
  r.sampling.max_new_tokens = a.max_new_tokens;
  r.sampling.eot_id = f.end_of_turn();
  r.seed = a.seed;
  if (auto id = (*gen)->Submit(std::move(r)); !id.ok()) Fail(id.status().message());
  const auto t0 = std::chrono::steady_clock::now();
  auto out = (*gen)->Run();
  if (!out.ok() || out->empty()) Fail(out.ok() ? "no sample" : out.status().message());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& ids = out->front().tokens;
  const std::string text = f.Text(ids);
  if (a.json_out) {
    std::printf("%s\n", json{{"prompt_ids", prompt->ids}, {"ids", ids}, {"text", text}}.dump().c_str());
  } else {
    std::printf("%s\n", text.c_str());
    std::fprintf(stderr, "herd-model: %zu prompt tokens, %zu generated in %.2f s\n", prompt->ids.size(),
                 ids.size(), secs);
  }
}

}  // namespace

void AddTokenizeCommand(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "encode UTF-8 text from stdin with DIR's tokenizer; prints the ids as a JSON array "
                  "(no special tokens added)");
  cmd->add_option("dir", args->dir, "an HF checkpoint directory")->required()->check(CLI::ExistingDirectory);
  cmd->add_flag("--parse-special", args->parse_special,
                "read special-token text (e.g. <|im_end|>) as the special token, as HF does");
  cmd->callback([args] { RunTokenize(*args); });
}

void AddGenerateCommand(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "answer a conversation with DIR's model, formatted with its own chat template");
  cmd->add_option("dir", args->dir, "an HF checkpoint directory")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--messages", args->messages, "a JSON file: [{\"role\": ..., \"content\": ...}, ...]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-new-tokens", args->max_new_tokens, "tokens to generate at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", args->temperature, "0 = greedy")->capture_default_str()->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--top-p", args->top_p, "nucleus sampling")->capture_default_str()->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--seed", args->seed, "sampling seed")->capture_default_str();
  cmd->add_option("--chat-format", args->chat_format, "llama3 | chatml instead of the checkpoint's template");
  cmd->add_flag("--json", args->json_out, "print {\"prompt_ids\", \"ids\", \"text\"}");
  cmd->callback([args] { RunGenerate(*args); });
}

}  // namespace herd::model_tool
