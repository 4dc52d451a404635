#include "stores/keys.h"

#include <array>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif
#include <cstring>

namespace herd::stores {

void PutU32BE(std::string* s, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  s->append(b, 4);
}
void PutU64BE(std::string* s, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = char(v >> (56 - 8 * i));
  s->append(b, 8);
}
uint32_t GetU32BE(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t(u[0]) << 24) | (uint32_t(u[1]) << 16) | (uint32_t(u[2]) << 8) | uint32_t(u[3]);
}
uint64_t GetU64BE(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | u[i];
  return v;
}
void PutU64LE(std::string* s, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = char(v >> (8 * i));
  s->append(b, 8);
}
uint64_t GetU64LE(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

KeyWriter& KeyWriter::U32(uint32_t v) {
  PutU32BE(&s_, v);
  return *this;
}
KeyWriter& KeyWriter::U64(uint64_t v) {
  PutU64BE(&s_, v);
  return *this;
}
KeyWriter& KeyWriter::Str(std::string_view v) {
  PutU32BE(&s_, uint32_t(v.size()));
  s_.append(v);
  return *this;
}

bool KeyReader::U8(uint8_t* v) {
  if (k_.size() < 1) return false;
  *v = uint8_t(k_[0]);
  k_.remove_prefix(1);
  return true;
}
bool KeyReader::U32(uint32_t* v) {
  if (k_.size() < 4) return false;
  *v = GetU32BE(k_.data());
  k_.remove_prefix(4);
  return true;
}
bool KeyReader::U64(uint64_t* v) {
  if (k_.size() < 8) return false;
  *v = GetU64BE(k_.data());
  k_.remove_prefix(8);
  return true;
}
bool KeyReader::Str(std::string* v) {
  uint32_t n;
  if (k_.size() < 4) return false;
  n = GetU32BE(k_.data());
  if (k_.size() - 4 < n) return false;
  v->assign(k_.data() + 4, n);
  k_.remove_prefix(4 + size_t(n));
  return true;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(s.back());
    if (c != 0xff) {
      ++c;
      return s;
    }
    s.pop_back();
  }
  return s;
}

std::string KeyForDisplay(std::string_view key) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x21 && c < 0x7f && c != '\\') {
      out.push_back(char(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

std::string Base64UrlEncode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto* u = reinterpret_cast<const uint8_t*>(data.data());
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t(u[i]) << 16) | (uint32_t(u[i + 1]) << 8) | u[i + 2];
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t(u[i]) << 16;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (uint32_t(u[i]) << 16) | (uint32_t(u[i + 1]) << 8);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
  }
  return out;
}

bool Base64UrlDecode(std::string_view text, std::string* out) {
  static const std::array<int8_t, 256> kRev = [] {
    std::array<int8_t, 256> r{};
    r.fill(-1);
    for (int i = 0; i < 64; ++i) r[uint8_t(kB64[i])] = int8_t(i);
    return r;
  }();
  out->clear();
  if (text.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : text) {
    int8_t v = kRev[c];
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(char((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero (canonical encoding), else the token was edited.
  return (acc & ((1u << bits) - 1)) == 0;
}

uint32_t Crc32c(const void* data, size_t n, uint32_t seed) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (0x82F63B78u ^ (c >> 1)) : (c >> 1);
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = ~seed;
  const auto* p = static_cast<const uint8_t*>(data);
  size_t i = 0;
#if defined(__SSE4_2__)
  // Hardware CRC32C, 8 bytes a step (same polynomial as the table).
  uint64_t c64 = c;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    c64 = _mm_crc32_u64(c64, w);
  }
  c = uint32_t(c64);
#endif
  for (; i < n; ++i) c = kTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

}  // namespace herd::stores
