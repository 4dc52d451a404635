#pragma once
// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), written here because
// OpenSSL is not a dependency. The one copy in herd: page-token MACs,
// artifact and checkpoint hashes, idempotency request hashes, auth token
// hashes and content-hash ids of annotations.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace herd {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;
  Sha256() { Reset(); }
  void Reset();
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  Digest Finish();  // the object must be Reset() before reuse

  std::string FinishHex();  // lowercase hex of Finish()

  static Digest Hash(std::string_view s);
  static std::string HexHash(std::string_view s);

 private:
  void Block(const uint8_t* p);  // one 64-byte block
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256::Digest HmacSha256(std::string_view key, std::string_view message);
std::string ToHex(const uint8_t* data, size_t n);
inline std::string ToHex(const Sha256::Digest& d) { return ToHex(d.data(), d.size()); }
// Constant-time comparison of equal-length byte strings (MAC checks).
bool ConstantTimeEqual(std::string_view a, std::string_view b);
// Lowercase hex SHA-256 of data (same as Sha256::HexHash).
inline std::string Sha256Hex(std::string_view data) { return Sha256::HexHash(data); }
// Lowercase hex SHA-256 of a file, read in 1 MiB chunks. IoError names it.
Result<std::string> FileSha256(const std::string& path);

}  // namespace herd
