#pragma once
// Bearer-token auth from --auth-file (format in docs/api.md, "Auth"):
// JSON lines {"name": "...", "role": "admin|annotator|worker|viewer",
// "token_sha256": "<64 hex>"}; blank lines and lines starting with '#' are
// skipped. Only hashes are kept, in the file and in memory; a presented
// token is hashed and compared in constant time against every entry.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/wire/http.h"
#include "common/status.h"

namespace herd::api {

struct Principal {
  std::string name;
  Role role = Role::kViewer;
};

class Authenticator {
 public:
  // Errors name the file and line ("auth.jsonl:3: field 'role': ...").
  static Result<Authenticator> LoadFile(const std::string& path);
  static Result<Authenticator> Parse(std::string_view text, const std::string& source_name);

  // The principal whose token hashes to sha256(token), or nullopt.
  std::optional<Principal> Authenticate(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Principal principal;
    std::array<uint8_t, 32> hash;
  };
  std::vector<Entry> entries_;
};

// "Bearer abc" → "abc" (scheme case-insensitive, RFC 6750 §2.1); nullopt
// when the header is not a bearer credential.
std::optional<std::string_view> BearerToken(std::string_view authorization);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

// herdd refuses to serve a non-loopback address without an auth file:
// FailedPrecondition naming the address, else OK.
Status CheckListenAllowed(std::string_view host, bool have_auth_file);

// Constant-time equality of two digests (no early exit on the first
// differing byte).
bool ConstantTimeEquals(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b);

}  // namespace herd::api
