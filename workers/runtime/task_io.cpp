#include "workers/runtime/task_io.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "workers/model/checkpoint.h"
#include "workers/model/tokenizer.h"
#include "common/sha256.h"

namespace herd::worker {

using nlohmann::json;
namespace fs = std::filesystem;

Result<std::string> SpecString(const json& spec, const char* field) {
  auto it = spec.find(field);
  if (it == spec.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Status::InvalidArgument(std::string("spec.") + field + ": required string");
  }
  return it->get<std::string>();
}

double SpecNumber(const json& spec, const char* field, double fallback) {
  auto it = spec.find(field);
  return it != spec.end() && it->is_number() ? it->get<double>() : fallback;
}

Result<std::vector<json>> ReadJsonl(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("dataset " + path + ": cannot open");
  std::vector<json> rows;
  std::string line;
  int64_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": not a JSON object");
    }
    rows.push_back(std::move(j));
  }
  return rows;
}

Result<std::vector<model::ChatMessage>> ChatMessages(const json& messages, const std::string& what) {
  if (!messages.is_array()) return Status::InvalidArgument(what + ": must be an array of messages");
  std::vector<model::ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    std::string p = what + "[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return Status::InvalidArgument(p + ": needs string 'role' and 'content'");
    }
    auto role = model::ParseRole(m["role"].get<std::string>());
    if (!role.ok()) return role.status().WithContext(p + ".role");
    out.push_back({*role, m["content"].get<std::string>()});
  }
  return out;
}

Result<std::unique_ptr<model::LlamaModel>> LoadModel(const std::string& dir, int64_t max_batch,
                                                     int64_t max_seq, bool as_reward_model) {
  HERD_ASSIGN_OR_RETURN(model::LlamaConfig cfg, model::LoadCheckpointConfig(dir));
  const bool was_rm = cfg.is_reward_model;
  if (as_reward_model) cfg.is_reward_model = true;
  HERD_ASSIGN_OR_RETURN(auto m, model::LlamaModel::Create(cfg, max_batch, max_seq));
  std::vector<model::ParamView> views = m->ParamViews();
  model::LoadOptions lo;
  if (as_reward_model && !was_rm) {
    // The RM starts from the LM's backbone; its scalar head starts at zero.
    lo.allow_unexpected = true;  // lm_head.weight
    auto score = std::find_if(views.begin(), views.end(),
                              [](const model::ParamView& v) { return v.name == "score.weight"; });
    if (score != views.end()) {
      std::fill(score->data, score->data + score->numel(), 0.0f);
      views.erase(score);
    }
  }
  HERD_RETURN_IF_ERROR(model::LoadCheckpointInto(dir, views, lo).WithContext("loading " + dir));
  return m;
}

Result<json> DescribeCheckpoint(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;  // rel path, sha256
  uint64_t bytes = 0;
  std::string config_sha;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) return Status::IoError("listing " + dir + ": " + ec.message());
    if (!it->is_regular_file()) continue;
    HERD_ASSIGN_OR_RETURN(std::string hex, FileSha256(it->path().string()));
    bytes += static_cast<uint64_t>(it->file_size());
    std::string rel = fs::relative(it->path(), dir).string();
    if (rel == "config.json") config_sha = hex;
    files.emplace_back(rel, hex);
  }
  std::sort(files.begin(), files.end());
  Sha256 all;
  for (const auto& [rel, hex] : files) {
    all.Update(rel.data(), rel.size());
    all.Update("\0", 1);
    all.Update(hex.data(), hex.size());
    all.Update("\n", 1);
  }
  return json{{"sha256", all.FinishHex()}, {"size_bytes", bytes}, {"config_sha256", config_sha}};
}

Result<json> SaveModel(model::LlamaModel& m, const std::string& dir) {
  model::SaveOptions so;
  so.overwrite = true;  // a retried task rewrites its own output directory
  so.tokenizer_json = model::ByteTokenizer::TokenizerJson();
  so.tokenizer_config_json = model::ByteTokenizer::TokenizerConfigJson();
  so.generation_eos_token_ids = {model::kEotId};
  HERD_RETURN_IF_ERROR(model::SaveCheckpoint(dir, m.config(), m.ParamViews(), model::DType::kF32, so));
  return DescribeCheckpoint(dir);
}

}  // namespace herd::worker
