#include "api/client/json_client.h"

#include "api/wire/json_util.h"
#include "api/wire/problem.h"

namespace herd::api {

Status StatusFromResponse(const Response& r) {
  if (r.status >= 200 && r.status < 300) return Status::Ok();
  ParsedProblem p = ParseProblem(r.body);
  std::string msg = std::to_string(r.status);
  if (!p.title.empty()) msg += " " + p.title;
  if (!p.detail.empty()) msg += ": " + p.detail;
  switch (r.status) {
    case 400:
    case 422: return Status::InvalidArgument(msg);
    case 401:
    case 403: return Status::FailedPrecondition(msg);
    case 404: return Status::NotFound(msg);
    case 409: return Status::AlreadyExists(msg);
    case 413:
    case 429: return Status::ResourceExhausted(msg);
    case 503: return Status::Unavailable(msg);
    default: return Status::Internal(msg);
  }
}

Result<nlohmann::json> JsonResult(const Response& r) {
  HERD_RETURN_IF_ERROR(StatusFromResponse(r));
  if (r.body.empty()) return nlohmann::json();
  auto j = ParseJson(r.body);
  if (!j.ok()) return j.status().WithContext("response body");
  return j;
}

Result<nlohmann::json> GetJson(HttpClient& c, std::string_view target) {
  HERD_ASSIGN_OR_RETURN(Response r, c.Request("GET", target));
  return JsonResult(r);
}

Result<nlohmann::json> SendJson(HttpClient& c, std::string_view method, std::string_view target,
                                const nlohmann::json& body) {
  Headers h;
  h.Set("Content-Type", "application/json");
  HERD_ASSIGN_OR_RETURN(Response r, c.Request(method, target, DumpJson(body), h));
  return JsonResult(r);
}

}  // namespace herd::api
