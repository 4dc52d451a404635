#pragma once
// Key codecs (docs/store.md "Keys"): big-endian fixed-width integers and
// u32-length-prefixed strings, so that byte order = (field, field, ...)
// order and every prefix of fields is a scan prefix.
//
// Length prefixes sort strings by length first, then bytes. Store-issued ids
// ("run-12") therefore come out in numeric order within a prefix.
#include <cstdint>
#include <string>
#include <string_view>

namespace herd::stores {

class KeyWriter {
 public:
  KeyWriter& U8(uint8_t v) {
    s_.push_back(char(v));
    return *this;
  }
  KeyWriter& U32(uint32_t v);
  KeyWriter& U64(uint64_t v);
  KeyWriter& Str(std::string_view v);  // u32 BE length, then the bytes
  KeyWriter& Raw(std::string_view v) {
    s_.append(v);
    return *this;
  }
  const std::string& str() const { return s_; }
  std::string Take() { return std::move(s_); }

 private:
  std::string s_;
};

// Reads fields back; every call fails (returns false) on a short key.
class KeyReader {
 public:
  explicit KeyReader(std::string_view k) : k_(k) {}
  bool U8(uint8_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool Str(std::string* v);
  bool Done() const { return k_.empty(); }
  std::string_view rest() const { return k_; }

 private:
  std::string_view k_;
};

// The smallest key greater than every key that starts with `prefix`, or ""
// when none exists (prefix all 0xff): the iterate_upper_bound of a prefix scan.
std::string PrefixSuccessor(std::string_view prefix);

// Fixed-width helpers shared by the codecs.
void PutU32BE(std::string* s, uint32_t v);
void PutU64BE(std::string* s, uint64_t v);
uint32_t GetU32BE(const char* p);
uint64_t GetU64BE(const char* p);
void PutU64LE(std::string* s, uint64_t v);
uint64_t GetU64LE(const char* p);

// Printable rendering of a binary key for error messages ("run-1/3/p7/0"
// style: strings as-is when printable, integers in decimal is not possible
// without the layout, so this is hex for non-printable bytes).
std::string KeyForDisplay(std::string_view key);

// URL-safe base64 without padding (RFC 4648 §5).
std::string Base64UrlEncode(std::string_view data);
bool Base64UrlDecode(std::string_view text, std::string* out);

// CRC-32C (Castagnoli), for value trailers.
uint32_t Crc32c(const void* data, size_t n, uint32_t seed = 0);

}  // namespace herd::stores
