#pragma once
// Streaming SHA-256 (FIPS 180-4) for checkpoint provenance. workers/ may not
// link stores/ (which has its own for page tokens), hence this copy; both
// belong in common/ once someone owns that move.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace herd::train {

class Sha256Stream {
 public:
  Sha256Stream() { Reset(); }
  void Reset();
  void Update(const void* data, size_t n);
  std::array<uint8_t, 32> Finish();  // Reset() before reuse
  std::string FinishHex();

 private:
  void Block(const uint8_t* p);  // one 64-byte block
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lowercase hex SHA-256 of a file, read in 1 MiB chunks. IoError names it.
Result<std::string> FileSha256(const std::string& path);

}  // namespace herd::train
