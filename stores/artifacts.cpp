#include "stores/artifacts.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/sha256.h"

namespace herd::stores {

namespace fs = std::filesystem;

ArtifactStore::ArtifactStore(std::string root) : root_(std::move(root)) {}

Status ArtifactStore::ValidateId(std::string_view id, const char* what) {
  bool ok = !id.empty() && id.size() <= 64 && id[0] != '-' &&
            std::all_of(id.begin(), id.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            });
  if (ok) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " '" + std::string(id.substr(0, 80)) +
                                 "' is not a store-issued id ([a-z0-9-]{1,64})");
}

Result<std::string> ArtifactStore::CheckpointRelPath(const std::string& run, const std::string& ckpt) {
  HERD_RETURN_IF_ERROR(ValidateId(run, "run id"));
  HERD_RETURN_IF_ERROR(ValidateId(ckpt, "checkpoint id"));
  return "runs/" + run + "/checkpoints/" + ckpt;
}

Result<std::string> ArtifactStore::DatasetRelPath(const std::string& run, const std::string& dataset) {
  HERD_RETURN_IF_ERROR(ValidateId(run, "run id"));
  HERD_RETURN_IF_ERROR(ValidateId(dataset, "dataset id"));
  return "runs/" + run + "/datasets/" + dataset + ".jsonl";
}

Result<std::string> ArtifactStore::Resolve(const std::string& rel) const {
  // Accept exactly runs/<id>/checkpoints/<id> or runs/<id>/datasets/<id>.jsonl.
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = rel.find('/', start);
    parts.push_back(rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  Status bad = Status::InvalidArgument("artifact path '" + rel.substr(0, 200) + "' is not a store-built path");
  if (parts.size() != 4 || parts[0] != "runs") return bad;
  if (!ValidateId(parts[1], "run id").ok()) return bad;
  if (parts[2] == "checkpoints") {
    if (!ValidateId(parts[3], "checkpoint id").ok()) return bad;
  } else if (parts[2] == "datasets") {
    const std::string& f = parts[3];
    if (f.size() < 7 || f.compare(f.size() - 6, 6, ".jsonl") != 0) return bad;
    if (!ValidateId(std::string_view(f).substr(0, f.size() - 6), "dataset id").ok()) return bad;
  } else {
    return bad;
  }
  return (fs::path(root_) / rel).string();
}

Result<std::string> ArtifactStore::MakeCheckpointDir(const std::string& run, const std::string& ckpt) {
  HERD_ASSIGN_OR_RETURN(std::string rel, CheckpointRelPath(run, ckpt));
  fs::path p = fs::path(root_) / rel;
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return Status::IoError("create " + p.string() + ": " + ec.message());
  return p.string();
}

Result<std::string> ArtifactStore::MakeDatasetPath(const std::string& run, const std::string& dataset) {
  HERD_ASSIGN_OR_RETURN(std::string rel, DatasetRelPath(run, dataset));
  fs::path p = fs::path(root_) / rel;
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  if (ec) return Status::IoError("create " + p.parent_path().string() + ": " + ec.message());
  return p.string();
}

Result<std::string> ArtifactStore::HashFile(const std::string& path, uint64_t* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("open " + path + " for hashing");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0) {
      h.Update(buf.data(), size_t(n));
      total += uint64_t(n);
    }
  }
  if (in.bad()) return Status::IoError("read " + path + " while hashing");
  if (bytes) *bytes = total;
  return ToHex(h.Finish());
}

Result<DirectoryDigest> ArtifactStore::HashDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound("artifact directory " + dir + " does not exist");
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), dir).generic_string();
    if (rel != kChecksumsFile) files.push_back(std::move(rel));
  }
  if (ec) return Status::IoError("list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  DirectoryDigest d;
  Sha256 h;
  for (const auto& f : files) {
    uint64_t n = 0;
    HERD_ASSIGN_OR_RETURN(std::string fh, HashFile((fs::path(dir) / f).string(), &n));
    h.Update(f);
    h.Update(std::string_view("\0", 1));
    h.Update(fh);
    h.Update("\n");
    d.bytes += n;
    ++d.files;
  }
  d.sha256 = ToHex(h.Finish());
  return d;
}

Status ArtifactStore::DeleteCheckpoint(const std::string& run, const std::string& ckpt) {
  HERD_ASSIGN_OR_RETURN(std::string rel, CheckpointRelPath(run, ckpt));
  std::error_code ec;
  fs::remove_all(fs::path(root_) / rel, ec);
  if (ec) return Status::IoError("delete checkpoint " + rel + ": " + ec.message());
  return Status::Ok();
}

Status ArtifactStore::DeleteRun(const std::string& run) {
  HERD_RETURN_IF_ERROR(ValidateId(run, "run id"));
  std::error_code ec;
  fs::remove_all(fs::path(root_) / "runs" / run, ec);
  if (ec) return Status::IoError("delete artifacts of run " + run + ": " + ec.message());
  return Status::Ok();
}

namespace {

// Bytes of the regular files under dir. Workers create, rename and delete
// checkpoint directories while this walks: an entry gone by the time it is
// looked at counts as gone (ENOENT is not an error); any other error is.
Status SumFiles(const fs::path& dir, uint64_t* total) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return ec == std::errc::no_such_file_or_directory ? Status::Ok()
                                                           : Status::IoError("listing " + dir.string() + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::file_status st = it->symlink_status(ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) continue;
      return Status::IoError("stat " + it->path().string() + ": " + ec.message());
    }
    if (fs::is_directory(st)) {
      HERD_RETURN_IF_ERROR(SumFiles(it->path(), total));
    } else if (fs::is_regular_file(st)) {
      const uintmax_t n = fs::file_size(it->path(), ec);
      if (!ec) *total += n;
      else if (ec != std::errc::no_such_file_or_directory) {
        return Status::IoError("size of " + it->path().string() + ": " + ec.message());
      }
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IoError("listing " + dir.string() + ": " + ec.message());
  }
  return Status::Ok();
}

}  // namespace

Result<uint64_t> ArtifactStore::RunDiskUsage(const std::string& run) const {
  HERD_RETURN_IF_ERROR(ValidateId(run, "run id"));
  uint64_t total = 0;
  HERD_RETURN_IF_ERROR(SumFiles(fs::path(root_) / "runs" / run, &total).WithContext("disk usage of run " + run));
  return total;
}

}  // namespace herd::stores
