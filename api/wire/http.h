#pragma once
// Plain HTTP message types shared by the server (api/server) and the client
// (api/client). No Beast types here: only server.cpp and client.cpp include
// Beast, so everything else compiles fast.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace herd::api {

// Roles of the bearer tokens in --auth-file (docs/api.md, "Auth"). A role
// satisfies a requirement if it is the same role or kAdmin; kViewer is
// satisfied by every role (read-only routes).
enum class Role { kViewer = 0, kWorker, kAnnotator, kAdmin };
const char* RoleName(Role r);
Result<Role> ParseRole(std::string_view name);
bool RoleSatisfies(Role have, Role need);

// Header fields in arrival order; names compare case-insensitively
// (RFC 9110 §5.1).
class Headers {
 public:
  void Add(std::string name, std::string value);
  // Replaces every field of that name with one field.
  void Set(std::string name, std::string value);
  std::optional<std::string_view> Get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

struct Request {
  std::string method;  // "GET", as received
  std::string target;  // "/v1/runs?page_size=10", as received
  std::string path;    // "/v1/runs": the target before '?', still percent-encoded
  // Decoded query parameters in order ("a=1&b=x%20y" → {a,1},{b,"x y"}).
  std::vector<std::pair<std::string, std::string>> query;
  Headers headers;
  std::string body;  // empty for streaming routes (the body goes to the route's BodySink)

  // Filled by the server after routing and auth.
  std::map<std::string, std::string> params;  // "{run}" → "r1", percent-decoded
  std::string route;                          // the matched pattern, e.g. "/v1/runs/{run}"
  std::string principal;                      // the auth-file name; "anonymous" without auth
  Role role = Role::kViewer;
  std::string remote;  // "127.0.0.1:53412"

  std::optional<std::string> Query(std::string_view name) const;
  // "" when the route has no such parameter.
  const std::string& Param(const std::string& name) const;
};

// A response body made piece by piece while it is sent (chunked transfer
// coding), for bodies too large to hold: exports of a whole run. Next runs
// on the server's io thread, like a handler.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Replaces *piece with the next piece of the body; sets *done after the
  // last one (the last piece may be empty). An error after the status line
  // was sent can no longer become a problem response: the server closes the
  // connection without the terminating chunk, so the client sees a
  // truncated body, never a short one that looks complete.
  virtual Status Next(std::string* piece, bool* done) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
  // When set, the body comes from here instead of `body`.
  std::shared_ptr<BodySource> source;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response Stream(int status, std::shared_ptr<BodySource> source, std::string content_type);
};

// Splits a request target ("origin-form", RFC 9112 §3.2.1) into path and
// decoded query parameters. Errors name what is wrong (bad percent escape,
// target not starting with '/').
Status ParseTarget(std::string_view target, std::string* path,
                   std::vector<std::pair<std::string, std::string>>* query);
// "%41b+c" → "Ab c" when plus_is_space (query), "Ab+c" otherwise (path).
Result<std::string> PercentDecode(std::string_view s, bool plus_is_space);
// Encodes everything but unreserved characters (RFC 3986 §2.3).
std::string PercentEncode(std::string_view s);

}  // namespace herd::api
