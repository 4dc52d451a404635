#pragma once
// Routes: "METHOD pattern" → handler. Patterns are '/'-separated segments;
// a segment is a literal ("runs"), a parameter ("{run}"), or either with a
// Google-style custom verb suffix ("{run}:start", "runs:batchGet", AIP-136).
//   Add("POST", "/v1/runs/{run}:start", ...) matches "/v1/runs/r1:start"
//   with params {run: "r1"}. Parameters are percent-decoded per segment, so
//   "%2F" stays inside one parameter.
// When several patterns match, the most specific wins: segment by segment,
// a literal beats a parameter with a verb, which beats a bare parameter.
// A path that matches some pattern but not with this method → 405 (with
// Allow); no pattern → 404.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/wire/http.h"
#include "common/status.h"

namespace herd::api {

// Receives a streaming route's body chunk by chunk, so an upload of
// hundreds of MB is never held in memory. Created per request after the
// headers were read, routed and authorised; called on one thread at a time.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // A chunk of the (de-chunked) body, of any size; an error stops reading
  // and is sent as the problem response (the connection then closes).
  virtual Status OnChunk(std::string_view chunk) = 0;
  // The whole body was read. `req` has no body.
  virtual Response Finish(const Request& req) = 0;
};

// Handlers run on the server's io threads, possibly several at once: they
// must be thread-safe, and should not block for long (see docs/api.md).
using Handler = std::function<Response(const Request&)>;
// Returns the sink for this request, or a Status to reject it before its
// body is read.
using StreamHandler = std::function<Result<std::unique_ptr<BodySink>>(const Request&)>;

struct RouteOptions {
  // Role the bearer token must have (RoleSatisfies). Default: kViewer.
  Role role = Role::kViewer;
  // No token needed (health checks). Default: false.
  bool public_route = false;
  // Body limit in bytes for this route; 0 = the server's limit
  // (ServerOptions::body_limit, or stream_body_limit for streaming routes).
  // Default: 0.
  uint64_t body_limit = 0;
};

struct Route {
  std::string method;
  std::string pattern;
  RouteOptions options;
  Handler handler;              // set for buffered routes
  StreamHandler stream_handler;  // set for streaming routes
  // Parsed pattern.
  struct Segment {
    std::string literal;  // when !is_param
    std::string param;    // when is_param
    std::string verb;     // ":start" → "start"; "" when none
    bool is_param = false;
  };
  std::vector<Segment> segments;
};

struct RouteMatch {
  const Route* route = nullptr;  // null on 404/405
  std::map<std::string, std::string> params;
  int status = 404;   // 200 when route is set, else 404 or 405
  std::string allow;  // for 405: "GET, POST"
  std::string detail;  // why, for the problem detail (e.g. bad percent escape)
};

class Router {
 public:
  // InvalidArgument for a malformed pattern ("{x" / empty parameter name /
  // duplicate parameter) or a duplicate method+pattern.
  Status Add(std::string method, std::string pattern, Handler handler, RouteOptions opts = {});
  Status AddStreaming(std::string method, std::string pattern, StreamHandler handler,
                      RouteOptions opts = {});

  // path is the raw (percent-encoded) path of the request.
  RouteMatch Match(std::string_view method, std::string_view path) const;

  // Every route as {method, pattern}, in insertion order.
  std::vector<std::pair<std::string, std::string>> List() const;

 private:
  Status AddRoute(Route r);
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace herd::api
