#pragma once
// RFC 9457 problem details (application/problem+json). Every error the API
// returns goes through MakeProblem, so `type` is always one of the stable
// URNs below (docs/api.md, "Problem types"). URNs, not URLs: nothing needs
// to be hosted and no real registry host is claimed.
#include <string>
#include <string_view>
#include <vector>

#include "api/wire/http.h"
#include "common/status.h"

namespace herd::api {

inline constexpr const char* kProblemContentType = "application/problem+json";

enum class ProblemType {
  kInvalidArgument,     // 400 urn:herd:problem:invalid-argument
  kMalformedRequest,    // 400 urn:herd:problem:malformed-request (HTTP framing)
  kInvalidJson,         // 400 urn:herd:problem:invalid-json (syntax, UTF-8)
  kUnauthenticated,     // 401 urn:herd:problem:unauthenticated
  kPermissionDenied,    // 403 urn:herd:problem:permission-denied
  kNotFound,            // 404 urn:herd:problem:not-found
  kMethodNotAllowed,    // 405 urn:herd:problem:method-not-allowed
  kConflict,            // 409 urn:herd:problem:conflict (already exists)
  kFailedPrecondition,  // 409 urn:herd:problem:failed-precondition
  kPayloadTooLarge,     // 413 urn:herd:problem:payload-too-large
  kUnprocessable,       // 422 urn:herd:problem:unprocessable (e.g. atomic upload with bad lines)
  kHeadersTooLarge,     // 431 urn:herd:problem:headers-too-large
  kResourceExhausted,   // 429 urn:herd:problem:resource-exhausted
  kInternal,            // 500 urn:herd:problem:internal
  kUnavailable,         // 503 urn:herd:problem:unavailable (overload, draining)
};

// One entry of the optional "errors" member: which field or line is wrong.
struct FieldError {
  std::string field;  // JSON path ("config.sft.lr") or "" when `line` is used
  long long line = 0;  // 1-based JSONL line, 0 when not a line error
  std::string detail;
};

struct ProblemInfo {
  int status;
  const char* slug;   // "invalid-argument"
  const char* title;  // "Invalid argument"
};
const ProblemInfo& GetProblemInfo(ProblemType t);
std::string ProblemTypeUri(ProblemType t);  // "urn:herd:problem:invalid-argument"

// The body is {"type","title","status","detail"[,"instance"][,"errors"]}.
Response MakeProblem(ProblemType type, std::string detail, std::vector<FieldError> errors = {},
                     std::string instance = {});
// Maps a library Status to its problem (InvalidArgument → 400, NotFound →
// 404, ...). s must not be OK.
Response ProblemFromStatus(const Status& s, std::string instance = {});
ProblemType ProblemTypeForCode(Status::Code c);

// What a client needs from a problem body; falls back to the raw body when
// it is not problem+json.
struct ParsedProblem {
  std::string type;
  std::string title;
  int status = 0;
  std::string detail;
};
ParsedProblem ParseProblem(std::string_view body);

}  // namespace herd::api
