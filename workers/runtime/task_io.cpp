#include "workers/runtime/task_io.h"

#include <algorithm>
#include <filesystem>

#include "workers/model/checkpoint.h"
#include "workers/model/hf_tokenizer.h"
#include "workers/model/tokenizer.h"
#include "common/atomic_file.h"
#include "common/mapped_file.h"
#include "common/sha256.h"
#include "tasks/protocol.h"

namespace herd::worker {

using nlohmann::json;
namespace fs = std::filesystem;

Result<std::vector<model::ChatMessage>> ChatMessages(const std::vector<tasks::Message>& messages,
                                                     const std::string& what) {
  std::vector<model::ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    auto role = model::ParseRole(messages[i].role);
    if (!role.ok()) return role.status().WithContext(what + "[" + std::to_string(i) + "].role");
    out.push_back({*role, messages[i].content});
  }
  return out;
}

Result<std::unique_ptr<model::LlamaModel>> LoadModel(const std::string& dir, int64_t max_batch,
                                                     int64_t max_seq, bool as_reward_model) {
  HERD_RETURN_IF_ERROR(VerifyCheckpoint(dir));
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

namespace {

// Every regular file under dir but the checksums file: (relative path,
// sha256 hex), sorted by path; *bytes gets their total size.
using FileDigests = std::vector<std::pair<std::string, std::string>>;
Result<FileDigests> HashFiles(const std::string& dir, uint64_t* bytes) {
  FileDigests files;
  *bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) return Status::IoError("listing " + dir + ": " + ec.message());
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), dir).string();
    if (rel == kChecksumsFile) continue;
    HERD_ASSIGN_OR_RETURN(std::string hex, FileSha256(it->path().string()));
    *bytes += static_cast<uint64_t>(it->file_size());
    files.emplace_back(std::move(rel), std::move(hex));
  }
  std::sort(files.begin(), files.end());
  return files;
}

tasks::CheckpointInfo Describe(const FileDigests& files, uint64_t bytes) {
  Sha256 all;
  tasks::CheckpointInfo info;
  for (const auto& [rel, hex] : files) {
    all.Update(rel.data(), rel.size());
    all.Update("\0", 1);
    all.Update(hex.data(), hex.size());
    all.Update("\n", 1);
    if (rel == "config.json") info.config_sha256 = hex;
  }
  info.sha256 = all.FinishHex();
  info.size_bytes = bytes;
  return info;
}

}  // namespace

Result<tasks::CheckpointInfo> DescribeCheckpoint(const std::string& dir) {
  uint64_t bytes = 0;
  HERD_ASSIGN_OR_RETURN(FileDigests files, HashFiles(dir, &bytes));
  return Describe(files, bytes);
}

namespace {

// The files and digests dir's checksums file lists.
Result<std::vector<std::pair<std::string, std::string>>> ReadChecksums(const std::string& dir) {
  const std::string path = dir + "/" + kChecksumsFile;
  HERD_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path, 16u << 20));
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    // "<64 hex>  <path>"
    if (line.size() < 67 || line.substr(64, 2) != "  " ||
        line.substr(0, 64).find_first_not_of("0123456789abcdef") != std::string_view::npos) {
      return Status::DataLoss(std::string(tasks::kCorruptCheckpointPrefix) + dir + ": " + kChecksumsFile + ": line " +
                              std::to_string(line_no) + " is not '<sha256>  <file>'");
    }
    out.emplace_back(std::string(line.substr(66)), std::string(line.substr(0, 64)));
  }
  return out;
}

}  // namespace

Result<tasks::CheckpointInfo> SealCheckpoint(const std::string& dir) {
  uint64_t bytes = 0;
  HERD_ASSIGN_OR_RETURN(FileDigests files, HashFiles(dir, &bytes));
  std::string text;
  for (const auto& [rel, hex] : files) text += hex + "  " + rel + "\n";
  HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kChecksumsFile, text));
  return Describe(files, bytes);
}

Status VerifyCheckpoint(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / kChecksumsFile, ec)) return Status::Ok();
  HERD_ASSIGN_OR_RETURN(auto files, ReadChecksums(dir));
  for (const auto& [rel, want] : files) {
    const std::string path = dir + "/" + rel;
    if (!fs::is_regular_file(path, ec)) {
      return Status::DataLoss(std::string(tasks::kCorruptCheckpointPrefix) + dir + ": " + rel + ": missing (listed in " +
                              kChecksumsFile + ")");
    }
    HERD_ASSIGN_OR_RETURN(std::string got, FileSha256(path));
    if (got != want) {
      return Status::DataLoss(std::string(tasks::kCorruptCheckpointPrefix) + dir + ": " + rel + ": sha256 " + got +
                              " does not match " + want + " in " + kChecksumsFile +
                              " (a file changed after herd wrote it; if on purpose, remove " + kChecksumsFile + ")");
    }
  }
  return Status::Ok();
}

Result<model::ChatFormatter> LoadFormatter(const std::string& checkpoint_dir,
                                           const tasks::TextFormat& text) {
  model::TextSource src;
  src.tokenizer = text.tokenizer;
  src.chat_format = text.chat_format;
  auto f = model::LoadChatFormatter(checkpoint_dir, src);
  if (!f.ok() && !text.empty()) return f.status().WithContext("spec.text");
  return f;
}

namespace {

// The contents of dir/name, or "" when it has no such file.
Result<std::string> OptionalFile(const std::string& dir, const std::string& name) {
  if (dir.empty()) return std::string();
  const fs::path p = fs::path(dir) / name;
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::string();
  return ReadRegularFile(p.string(), 16u << 20);  // LoadChatFormatter's bound for these files
}

}  // namespace

Result<tasks::CheckpointInfo> SaveModel(model::LlamaModel& m, const std::string& dir,
                                        const model::ChatFormatter& format,
                                        const std::string& source_dir,
                                        const tasks::TextFormat& text) {
  model::SaveOptions so;
  so.overwrite = true;  // a retried task rewrites its own output directory
  so.tokenizer_json = format.tokenizer().json();
  HERD_ASSIGN_OR_RETURN(so.tokenizer_config_json, OptionalFile(source_dir, "tokenizer_config.json"));
  if (so.tokenizer_config_json.empty() && &format.tokenizer() == model::ByteTokenizer::Shared().get()) {
    so.tokenizer_config_json = model::ByteTokenizer::TokenizerConfigJson();
  }
  if (text.chat_format.empty()) {
    HERD_ASSIGN_OR_RETURN(so.chat_template_jinja, OptionalFile(source_dir, "chat_template.jinja"));
  } else {
    // The run chose the format: the checkpoint says so in its own template.
    json cfg = json::object();
    if (!so.tokenizer_config_json.empty()) {
      cfg = json::parse(so.tokenizer_config_json, nullptr, /*allow_exceptions=*/false);
      if (cfg.is_discarded() || !cfg.is_object()) {
        return Status::InvalidArgument(source_dir + "/tokenizer_config.json: not a JSON object");
      }
    }
    cfg["chat_template"] = model::ChatTemplateJinja(format.chat_template());
    so.tokenizer_config_json = cfg.dump(2) + "\n";
  }
  const int64_t eos = m.config().eos_token_id;
  so.generation_eos_token_ids = {eos};
  if (format.end_of_turn() != eos) so.generation_eos_token_ids.push_back(format.end_of_turn());
  HERD_RETURN_IF_ERROR(model::SaveCheckpoint(dir, m.config(), m.ParamViews(), model::DType::kF32, so));
  return SealCheckpoint(dir);
}

}  // namespace herd::worker
