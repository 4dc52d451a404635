#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace herd {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Writes all of data to fd, retrying short writes and EINTR.
bool WriteAll(int fd, std::string_view data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(dir + ": open for fsync: " + ErrnoText(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError(dir + ": fsync: " + ErrnoText(err));
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (!target.has_filename()) return Status::InvalidArgument(path + ": not a file name");
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");

  // Hidden, and unique per process and call, so concurrent writers of the
  // same target never share a temporary.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = (parent / ("." + target.filename().string() + ".tmp-" +
                                     std::to_string(::getpid()) + "-" +
                                     std::to_string(counter++)))
                              .string();

  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(path + ": cannot create " + tmp + ": " + ErrnoText(errno));
  std::string failed;
  int err = 0;
  if (!WriteAll(fd, contents)) {
    failed = "write";
    err = errno;
  } else if (::fsync(fd) != 0) {
    failed = "fsync";
    err = errno;
  }
  if (::close(fd) != 0 && failed.empty()) {
    failed = "close";
    err = errno;
  }
  if (failed.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    failed = "rename";
    err = errno;
  }
  if (!failed.empty()) {
    ::unlink(tmp.c_str());
    return Status::IoError(path + ": " + failed + ": " + ErrnoText(err));
  }
  return SyncDirectory(parent.string()).WithContext(path);
}

}  // namespace herd
