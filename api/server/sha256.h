#pragma once
// SHA-256 (FIPS 180-4), private to api/: token hashes and content-hash ids
// of annotations. A tiny local copy so herd_api does not depend on stores/;
// switch to stores/sha256.h once the two libraries may share it.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd::api {

class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  std::array<uint8_t, 32> Final();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex digest of data.
std::string Sha256Hex(std::string_view data);

}  // namespace herd::api
