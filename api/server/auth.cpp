#include "api/server/auth.h"

#include <arpa/inet.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/sha256.h"
#include "api/wire/json_util.h"

namespace herd::api {
namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::array<uint8_t, 32> Digest(std::string_view token) {
  Sha256 s;
  s.Update(token);
  return s.Finish();
}

}  // namespace

bool ConstantTimeEquals(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b) {
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff == 0;
}

Result<Authenticator> Authenticator::Parse(std::string_view text, const std::string& source) {
  Authenticator auth;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    const std::string where = source + ":" + std::to_string(line_no);
    auto j = ParseJson(line);
    if (!j.ok()) return j.status().WithContext(where);
    if (!j->is_object()) return Status::InvalidArgument(where + ": expected a JSON object");
    auto field = [&](const char* k) -> Result<std::string> {
      auto it = j->find(k);
      if (it == j->end()) return Status::InvalidArgument(where + ": field '" + k + "' missing");
      if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
        return Status::InvalidArgument(where + ": field '" + k + "' must be a non-empty string");
      }
      return it->get<std::string>();
    };
    HERD_ASSIGN_OR_RETURN(std::string name, field("name"));
    HERD_ASSIGN_OR_RETURN(std::string role_name, field("role"));
    HERD_ASSIGN_OR_RETURN(std::string hex, field("token_sha256"));
    auto role = ParseRole(role_name);
    if (!role.ok()) return role.status().WithContext(where);
    Entry e;
    e.principal = {name, *role};
    if (hex.size() != 64) {
      return Status::InvalidArgument(where + ": field 'token_sha256' must be 64 hex digits");
    }
    for (size_t i = 0; i < 32; ++i) {
      int hi = Hex(hex[2 * i]), lo = Hex(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument(where + ": field 'token_sha256' must be 64 hex digits");
      }
      e.hash[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    for (const auto& other : auth.entries_) {
      if (other.principal.name == name) {
        return Status::InvalidArgument(where + ": name '" + name + "' appears twice");
      }
    }
    auth.entries_.push_back(std::move(e));
  }
  if (auth.entries_.empty()) {
    return Status::InvalidArgument(source + ": no tokens (an empty auth file would lock everyone out)");
  }
  return auth;
}

Result<Authenticator> Authenticator::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot open auth file");
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

std::optional<Principal> Authenticator::Authenticate(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  const auto d = Digest(token);
  // Compare against every entry, so the time does not depend on which entry
  // (if any) matches.
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    if (ConstantTimeEquals(d, e.hash)) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->principal;
}

std::optional<std::string_view> BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  std::string_view t = authorization.substr(kScheme.size());
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  if (t.empty()) return std::nullopt;
  return t;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    static const in6_addr kLoop = IN6ADDR_LOOPBACK_INIT;
    return std::memcmp(&v6, &kLoop, sizeof v6) == 0;
  }
  return false;
}

Status CheckListenAllowed(std::string_view host, bool have_auth_file) {
  if (have_auth_file || IsLoopbackHost(host)) return Status::Ok();
  return Status::FailedPrecondition(
      "--listen " + std::string(host) +
      ": refusing a non-loopback address without --auth-file (anyone on the network could "
      "control runs)");
}

}  // namespace herd::api
