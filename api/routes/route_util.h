#pragma once
// Small helpers shared by the daemon route files.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "api/wire/http.h"
#include "api/wire/json_util.h"
#include "api/wire/problem.h"
#include "daemon/records.h"

namespace herd::api {

inline Response JsonResponse(int status, const nlohmann::json& j) {
  return Response::Json(status, DumpJson(j));
}

inline Response Problem(const Status& s) { return ProblemFromStatus(s); }

// page_size / page_token from the query (AIP-158). A page_size that is not
// a non-negative integer is InvalidArgument naming it.
Result<daemon::PageRequest> PageFromQuery(const Request& req);

// An optional unsigned integer query parameter ("round=2").
Result<std::optional<uint32_t>> UintQuery(const Request& req, const char* name);

// Parses a JSON object body; errors name the field/byte.
Result<nlohmann::json> ObjectBody(const Request& req);

// Reads an optional string member; InvalidArgument "field 'x': must be a string".
Status OptString(const nlohmann::json& j, const char* field, std::string* out);

}  // namespace herd::api
