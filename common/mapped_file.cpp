#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace herd {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IoError(path + ": open: " + ErrnoText());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string e = ErrnoText();
    ::close(fd);
    return Status::IoError(path + ": stat: " + e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": not a regular file");
  }
  MappedFile f;
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ > 0) {
    void* m = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const std::string e = ErrnoText();
      ::close(fd);
      return Status::IoError(path + ": mmap: " + e);
    }
    f.map_ = m;
  }
  ::close(fd);  // the mapping keeps the file alive
  return f;
}

Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  HERD_ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
  if (f.size() > max_bytes) {
    return Status::InvalidArgument(path + ": " + std::to_string(f.size()) + " bytes, more than the " +
                                   std::to_string(max_bytes) + " this file may have");
  }
  return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : map_(std::exchange(o.map_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (map_ != nullptr) ::munmap(map_, size_);
    map_ = std::exchange(o.map_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

}  // namespace herd
