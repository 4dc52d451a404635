#pragma once
// JSON parsing with errors that name the field: used for request bodies and
// for every JSONL line. Includes nlohmann/json, so only codec and route
// files include this header.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace herd::api {

// Deepest nesting of arrays/objects ParseJson accepts.
inline constexpr int kMaxJsonDepth = 128;

// Parses one JSON text. On failure the InvalidArgument message says where:
//   "invalid UTF-8 at byte 17 in field 'chosen'"
//   "invalid JSON at byte 5 in field 'prompt[1].content': syntax error ..."
// Invalid UTF-8 anywhere (also in keys) is an error, as RFC 8259 §8.1 requires;
// so is nesting deeper than kMaxJsonDepth (it would overflow the stack).
Result<nlohmann::json> ParseJson(std::string_view text);

// Serialises for the wire; invalid UTF-8 that slipped into a value becomes
// U+FFFD instead of throwing.
std::string DumpJson(const nlohmann::json& j);

// "object", "array", "string", "number", "boolean", "null".
std::string JsonTypeName(const nlohmann::json& j);

}  // namespace herd::api
