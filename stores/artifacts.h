#pragma once
// The artifact directory (<data-dir>/artifacts): checkpoints and
// materialised datasets. Layout (docs/store.md "Artifacts"):
//
//   <root>/runs/<run>/checkpoints/<checkpoint>/   an HF checkpoint directory
//   <root>/runs/<run>/datasets/<dataset>.jsonl    a materialised dataset
//
// Every path component comes from an id the store issued and is checked
// against [a-z0-9-]{1,64} (no leading '-'); client strings never reach a
// path. The sha256 of what is written is recorded in the store (Checkpoint).
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace herd::stores {

struct DirectoryDigest {
  std::string sha256;   // hex; see ArtifactStore::HashDirectory
  uint64_t bytes = 0;   // total size of the regular files
  uint64_t files = 0;
};

class ArtifactStore {
 public:
  // root: usually <data-dir>/artifacts; created on first use.
  explicit ArtifactStore(std::string root);
  const std::string& root() const { return root_; }

  // OK when id matches [a-z0-9-]{1,64} and does not start with '-';
  // otherwise InvalidArgument naming `what`.
  static Status ValidateId(std::string_view id, const char* what);

  // Relative paths (what Checkpoint.path stores) and their absolute form.
  static Result<std::string> CheckpointRelPath(const std::string& run_id, const std::string& checkpoint_id);
  static Result<std::string> DatasetRelPath(const std::string& run_id, const std::string& dataset_id);
  // root/rel after checking rel has the shape of a path made above (so a
  // stored path edited on disk cannot escape the root).
  Result<std::string> Resolve(const std::string& rel) const;

  // Creates (if needed) and returns the absolute checkpoint directory.
  Result<std::string> MakeCheckpointDir(const std::string& run_id, const std::string& checkpoint_id);
  // Creates the datasets folder and returns the absolute dataset file path.
  Result<std::string> MakeDatasetPath(const std::string& run_id, const std::string& dataset_id);

  // sha256 (hex) of a file's bytes, streamed in 1 MiB reads.
  static Result<std::string> HashFile(const std::string& path, uint64_t* bytes = nullptr);
  // The per-file checksums every herd checkpoint carries (written and
  // checked by workers/runtime/task_io.h SealCheckpoint/VerifyCheckpoint).
  // Derived from the other files, it is left out of the digest.
  static constexpr const char* kChecksumsFile = "checksums.sha256";
  // sha256 over the sorted lines "<relative path>\0<file sha256 hex>\n" of
  // every regular file under dir but kChecksumsFile: stable across copies,
  // sensitive to any rename, addition or content change. The same digest as
  // the worker's DescribeCheckpoint, which herdd stores as Checkpoint.sha256.
  static Result<DirectoryDigest> HashDirectory(const std::string& dir);

  Status DeleteCheckpoint(const std::string& run_id, const std::string& checkpoint_id);
  // Removes <root>/runs/<run> entirely (done together with Store::DeleteRunData).
  Status DeleteRun(const std::string& run_id);
  // Bytes of regular files under <root>/runs/<run>; 0 when absent.
  Result<uint64_t> RunDiskUsage(const std::string& run_id) const;

 private:
  std::string root_;
};

}  // namespace herd::stores
