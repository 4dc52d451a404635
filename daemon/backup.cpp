#include "daemon/backup.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stores/artifacts.h"
#include "stores/store.h"

namespace herd::daemon {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kBackupFormat = 1;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsEmptyDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::is_empty(p, ec) && !ec;
}

// Copies the tree at from (absent: nothing) to the new directory to,
// counting regular files and their bytes.
Status CopyTree(const fs::path& from, const fs::path& to, BackupInfo* info) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return Status::IoError("create " + to.string() + ": " + ec.message());
  if (!fs::exists(from, ec)) return Status::Ok();
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) return Status::IoError("copy " + from.string() + " to " + to.string() + ": " + ec.message());
  for (auto it = fs::recursive_directory_iterator(to, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) {
      info->artifact_files++;
      info->artifact_bytes += it->file_size(ec);
    }
  }
  if (ec) return Status::IoError("walk " + to.string() + ": " + ec.message());
  return Status::Ok();
}

Status WriteManifest(const fs::path& dir, const json& j) {
  const fs::path tmp = dir / (std::string(kBackupManifest) + ".tmp");
  {
    std::ofstream f(tmp);
    f << j.dump(2) << "\n";
    if (!f.flush()) return Status::IoError("write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, dir / kBackupManifest, ec);
  if (ec) return Status::IoError("rename " + tmp.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Backups::Backups(stores::Store* store, const stores::ArtifactStore* artifacts)
    : store_(store), artifacts_(artifacts) {}

Result<BackupInfo> Backups::Create(const std::string& dir_text) {
  if (dir_text.empty()) return Status::InvalidArgument("field 'dir': required");
  // The system calls would stop at the NUL and act on a directory nobody named.
  if (dir_text.find('\0') != std::string::npos) {
    return Status::InvalidArgument("field 'dir': contains a NUL byte");
  }
  const fs::path dir(dir_text);
  if (!dir.is_absolute()) {
    return Status::InvalidArgument("field 'dir': must be an absolute path on the daemon's machine, got '" +
                                   dir_text + "'");
  }
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  if (existed && !IsEmptyDir(dir)) {
    return Status::AlreadyExists("field 'dir': '" + dir_text +
                                 "' exists and is not an empty directory; back up into a new one");
  }
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("field 'dir': cannot create '" + dir_text + "': " + ec.message());

  BackupInfo info;
  info.dir = dir.lexically_normal().string();
  info.created_ms = NowMs();
  Status s = store_->CreateBackup((dir / "db").string());
  if (s.ok()) s = CopyTree(artifacts_->root(), dir / "artifacts", &info);
  if (s.ok()) {
    s = WriteManifest(dir, {{"format", kBackupFormat},
                            {"created_ms", info.created_ms},
                            {"instance_id", store_->instance_id()},
                            {"schema_version", store_->schema_version()},
                            {"artifact_files", info.artifact_files},
                            {"artifact_bytes", info.artifact_bytes}});
  }
  if (!s.ok()) {
    // Leave nothing that could pass for a backup.
    if (existed) {
      for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
    } else {
      fs::remove_all(dir, ec);
    }
    return s.WithContext("backup into " + dir_text);
  }
  return info;
}

Result<BackupInfo> Backups::Restore(const std::string& backup_text, const std::string& data_text) {
  std::error_code ec;
  const fs::path backup = fs::absolute(backup_text, ec);
  const fs::path data = fs::absolute(data_text, ec);
  if (!fs::is_directory(backup, ec)) return Status::NotFound("backup " + backup_text + ": no such directory");
  std::ifstream mf(backup / kBackupManifest);
  if (!mf) {
    return Status::NotFound("backup " + backup_text + ": no " + kBackupManifest +
                            " (not a herd backup, or one that did not finish)");
  }
  std::stringstream text;
  text << mf.rdbuf();
  json manifest = json::parse(text.str(), nullptr, false);
  if (!manifest.is_object() || manifest.value("format", 0) != kBackupFormat) {
    return Status::FailedPrecondition("backup " + backup_text + ": " + kBackupManifest +
                                      " is not a format " + std::to_string(kBackupFormat) + " manifest");
  }
  if (!fs::is_directory(backup / "db", ec)) return Status::NotFound("backup " + backup_text + ": no db/ directory");
  {
    // Opening it read-only checks the schema (a newer one is refused) and
    // that RocksDB can read it, before anything is copied.
    stores::StoreOptions so;
    so.data_dir = backup.string();
    so.db_path = (backup / "db").string();
    so.read_only = true;
    so.create_if_missing = false;
    auto check = stores::Store::Open(so);
    if (!check.ok()) return check.status().WithContext("backup " + backup_text + "/db");
  }
  if (fs::exists(data / "db", ec)) {
    return Status::AlreadyExists("--data-dir " + data_text + " already holds a database (" +
                                 (data / "db").string() + "); restore into a new data dir");
  }
  if (fs::exists(data / "artifacts", ec) && !IsEmptyDir(data / "artifacts")) {
    return Status::AlreadyExists("--data-dir " + data_text + " already holds artifacts (" +
                                 (data / "artifacts").string() + "); restore into a new data dir");
  }
  HERD_RETURN_IF_ERROR(stores::Store::RestoreBackup((backup / "db").string(), data.string()));

  BackupInfo info;
  info.dir = backup.string();
  info.created_ms = manifest.value("created_ms", int64_t{0});
  // Copy, then rename into place, so a crash never leaves half the artifacts
  // looking complete.
  const fs::path tmp = data / ("artifacts.restoring-" + std::to_string(NowMs()));
  Status s = CopyTree(backup / "artifacts", tmp, &info);
  if (s.ok()) {
    fs::remove(data / "artifacts", ec);  // the empty directory, if any
    fs::rename(tmp, data / "artifacts", ec);
    if (ec) s = Status::IoError("rename " + tmp.string() + ": " + ec.message());
  }
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s.WithContext("restoring artifacts into " + data_text);
  }
  return info;
}

}  // namespace herd::daemon
