#pragma once
// Backups of a whole herd data dir, taken while herdd serves, and their
// restore into a new data dir (docs/store.md "Backups"). A backup is a
// directory:
//
//   <dir>/db/          RocksDB checkpoint of <data-dir>/db (itself a database)
//   <dir>/artifacts/   copy of <data-dir>/artifacts (checkpoints, datasets)
//   <dir>/BACKUP.json  written last: {"format", "created_ms", "instance_id",
//                      "schema_version", "artifact_files", "artifact_bytes"}
//
// The database part is one consistent snapshot. Artifacts are copied after
// it: checkpoint directories are complete before the store records them and
// are never changed afterwards, so every artifact the snapshot refers to is
// in the copy unless its run was deleted meanwhile.
#include <cstdint>
#include <string>

#include "common/status.h"

namespace herd::stores {
class Store;
class ArtifactStore;
}  // namespace herd::stores

namespace herd::daemon {

inline constexpr const char* kBackupManifest = "BACKUP.json";

struct BackupInfo {
  std::string dir;          // absolute
  int64_t created_ms = 0;
  uint64_t artifact_files = 0;
  uint64_t artifact_bytes = 0;
};

class Backups {
 public:
  // Neither is owned; both must outlive this.
  Backups(stores::Store* store, const stores::ArtifactStore* artifacts);

  // Takes a backup into dir, which must be an absolute path that does not
  // exist or is an empty directory: InvalidArgument (not absolute) or
  // AlreadyExists (not empty), naming 'dir'. Runs for as long as the copy
  // of the artifacts takes. On failure what was written under dir is
  // removed.
  Result<BackupInfo> Create(const std::string& dir);

  // Restores the backup in backup_dir into data_dir (created if needed),
  // which must hold no database and no artifacts yet. herdd must not be
  // running on data_dir. Errors name what is missing or in the way.
  static Result<BackupInfo> Restore(const std::string& backup_dir, const std::string& data_dir);

 private:
  stores::Store* store_;
  const stores::ArtifactStore* artifacts_;
};

}  // namespace herd::daemon
