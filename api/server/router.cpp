#include "api/server/router.h"

#include <cctype>
#include <set>

namespace herd::api {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  // "/a/b" → {"a","b"}; "/" → {""}.
  std::vector<std::string_view> out;
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool ValidName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

// Specificity of a segment: literal 2, parameter with verb 1, parameter 0.
int Rank(const Route::Segment& s) { return !s.is_param ? 2 : (s.verb.empty() ? 0 : 1); }

}  // namespace

Status Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions opts) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.options = opts;
  r.handler = std::move(handler);
  return AddRoute(std::move(r));
}

Status Router::AddStreaming(std::string method, std::string pattern, StreamHandler handler,
                            RouteOptions opts) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.options = opts;
  r.stream_handler = std::move(handler);
  return AddRoute(std::move(r));
}

Status Router::AddRoute(Route r) {
  const std::string where = "route pattern '" + r.pattern + "'";
  if (r.pattern.empty() || r.pattern[0] != '/') {
    return Status::InvalidArgument(where + ": must start with '/'");
  }
  std::set<std::string> names;
  for (std::string_view seg : SplitPath(r.pattern)) {
    Route::Segment s;
    std::string_view body = seg;
    if (!seg.empty() && seg[0] == '{') {
      size_t close = seg.find('}');
      if (close == std::string_view::npos) return Status::InvalidArgument(where + ": '{' without '}'");
      s.is_param = true;
      s.param = std::string(seg.substr(1, close - 1));
      if (!ValidName(s.param)) return Status::InvalidArgument(where + ": bad parameter name");
      if (!names.insert(s.param).second) {
        return Status::InvalidArgument(where + ": parameter '" + s.param + "' appears twice");
      }
      std::string_view rest = seg.substr(close + 1);
      if (!rest.empty()) {
        if (rest[0] != ':' || !ValidName(rest.substr(1))) {
          return Status::InvalidArgument(where + ": after '}' only ':verb' may follow");
        }
        s.verb = std::string(rest.substr(1));
      }
    } else {
      if (body.find_first_of("{}") != std::string_view::npos) {
        return Status::InvalidArgument(where + ": a parameter must be a whole segment");
      }
      size_t colon = body.rfind(':');
      if (colon != std::string_view::npos) {
        s.verb = std::string(body.substr(colon + 1));
        body = body.substr(0, colon);
      }
      s.literal = std::string(body);
    }
    r.segments.push_back(std::move(s));
  }
  for (const auto& existing : routes_) {
    if (existing->method == r.method && existing->pattern == r.pattern) {
      return Status::AlreadyExists(where + ": already added for " + r.method);
    }
  }
  routes_.push_back(std::make_unique<Route>(std::move(r)));
  return Status::Ok();
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  std::vector<std::string_view> segs = SplitPath(path);
  struct Candidate {
    const Route* route;
    std::map<std::string, std::string> params;
    std::vector<int> rank;
  };
  std::vector<Candidate> candidates;
  for (const auto& rp : routes_) {
    const Route& r = *rp;
    if (r.segments.size() != segs.size()) continue;
    Candidate c{&r, {}, {}};
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const Route::Segment& s = r.segments[i];
      std::string_view seg = segs[i];
      if (!s.verb.empty()) {
        // The verb follows the last ':' of the segment.
        size_t colon = seg.rfind(':');
        if (colon == std::string_view::npos || seg.substr(colon + 1) != s.verb) {
          ok = false;
          break;
        }
        seg = seg.substr(0, colon);
      }
      if (s.is_param) {
        if (seg.empty()) {
          ok = false;
          break;
        }
        auto decoded = PercentDecode(seg, false);
        if (!decoded.ok()) {
          result.detail = "path segment " + std::to_string(i + 1) + ": " + decoded.status().message();
          ok = false;
          break;
        }
        c.params[s.param] = std::move(*decoded);
      } else if (seg != s.literal) {
        ok = false;
      }
      c.rank.push_back(Rank(s));
    }
    if (ok) candidates.push_back(std::move(c));
  }
  if (candidates.empty()) return result;
  // Only the most specific patterns compete: "/v1/runs/r1:start" with GET is
  // a 405 of "{run}:start", not a GET of "{run}" = "r1:start".
  std::vector<int> best;
  for (const auto& c : candidates) best = std::max(best, c.rank);
  std::set<std::string> allowed;
  for (auto& c : candidates) {
    if (c.rank != best) continue;
    if (c.route->method == method) {
      result.route = c.route;
      result.params = std::move(c.params);
      result.status = 200;
      return result;
    }
    allowed.insert(c.route->method);
  }
  result.status = 405;
  for (const auto& m : allowed) {
    if (!result.allow.empty()) result.allow += ", ";
    result.allow += m;
  }
  return result;
}

std::vector<std::pair<std::string, std::string>> Router::List() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_) out.emplace_back(r->method, r->pattern);
  return out;
}

}  // namespace herd::api
