#pragma once
// JSON helpers over HttpClient: send/receive nlohmann::json, turn problem
// responses into Status errors carrying the server's detail.
#include <nlohmann/json.hpp>
#include <string_view>

#include "api/client/client.h"

namespace herd::api {

// 2xx → the parsed body (null for an empty body); a problem response →
// a Status whose code follows the HTTP status and whose message is
// "<status> <title>: <detail>"; a body that is not JSON → InvalidArgument.
Result<nlohmann::json> JsonResult(const Response& r);
Status StatusFromResponse(const Response& r);

Result<nlohmann::json> GetJson(HttpClient& c, std::string_view target);
Result<nlohmann::json> SendJson(HttpClient& c, std::string_view method, std::string_view target,
                                const nlohmann::json& body);

}  // namespace herd::api
