#pragma once
// A whole file mapped read-only into memory (mmap), unmapped when its owner
// goes. Move-only; the bytes stay at the same address when moved, so
// pointers into data() survive a move of the owner.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace herd {

class MappedFile {
 public:
  // NotFound "<path>: no such file"; InvalidArgument for a directory or
  // other non-regular file; IoError naming the failing call. An empty file
  // maps to data() == nullptr, size() == 0.
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const { return static_cast<const std::byte*>(map_); }
  uint64_t size() const { return size_; }

 private:
  void* map_ = nullptr;
  uint64_t size_ = 0;
};

// The whole of a regular file (MappedFile::Open's errors), or
// InvalidArgument naming the path when it is larger than max_bytes: for
// files a user names (a tokenizer.json, a template), so that /dev/zero or
// a wrong multi-gigabyte path is refused rather than read.
Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);

}  // namespace herd
