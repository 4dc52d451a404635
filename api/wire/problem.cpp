#include "api/wire/problem.h"

#include "api/wire/json_util.h"

namespace herd::api {

const ProblemInfo& GetProblemInfo(ProblemType t) {
  static const ProblemInfo kInfos[] = {
      {400, "invalid-argument", "Invalid argument"},
      {400, "malformed-request", "Malformed HTTP request"},
      {400, "invalid-json", "Invalid JSON"},
      {401, "unauthenticated", "Authentication required"},
      {403, "permission-denied", "Permission denied"},
      {404, "not-found", "Not found"},
      {405, "method-not-allowed", "Method not allowed"},
      {409, "conflict", "Conflict"},
      {409, "failed-precondition", "Failed precondition"},
      {413, "payload-too-large", "Payload too large"},
      {422, "unprocessable", "Unprocessable content"},
      {431, "headers-too-large", "Request header fields too large"},
      {429, "resource-exhausted", "Resource exhausted"},
      {500, "internal", "Internal error"},
      {503, "unavailable", "Service unavailable"},
  };
  return kInfos[static_cast<int>(t)];
}

std::string ProblemTypeUri(ProblemType t) {
  return std::string("urn:herd:problem:") + GetProblemInfo(t).slug;
}

Response MakeProblem(ProblemType type, std::string detail, std::vector<FieldError> errors,
                     std::string instance) {
  const ProblemInfo& info = GetProblemInfo(type);
  nlohmann::json j = {{"type", ProblemTypeUri(type)},
                      {"title", info.title},
                      {"status", info.status},
                      {"detail", std::move(detail)}};
  if (!instance.empty()) j["instance"] = std::move(instance);
  if (!errors.empty()) {
    nlohmann::json arr = nlohmann::json::array();
    for (auto& e : errors) {
      nlohmann::json o;
      if (e.line > 0) o["line"] = e.line;
      if (!e.field.empty()) o["field"] = e.field;
      o["detail"] = std::move(e.detail);
      arr.push_back(std::move(o));
    }
    j["errors"] = std::move(arr);
  }
  Response r;
  r.status = info.status;
  r.content_type = kProblemContentType;
  r.body = DumpJson(j);
  return r;
}

ProblemType ProblemTypeForCode(Status::Code c) {
  using C = Status::Code;
  switch (c) {
    case C::kInvalidArgument: return ProblemType::kInvalidArgument;
    case C::kNotFound: return ProblemType::kNotFound;
    case C::kAlreadyExists: return ProblemType::kConflict;
    case C::kFailedPrecondition: return ProblemType::kFailedPrecondition;
    case C::kOutOfRange: return ProblemType::kInvalidArgument;
    case C::kResourceExhausted: return ProblemType::kResourceExhausted;
    case C::kUnavailable: return ProblemType::kUnavailable;
    case C::kAborted: return ProblemType::kConflict;
    case C::kOk:
    case C::kDataLoss:
    case C::kIoError:
    case C::kInternal: return ProblemType::kInternal;
  }
  return ProblemType::kInternal;
}

Response ProblemFromStatus(const Status& s, std::string instance) {
  return MakeProblem(ProblemTypeForCode(s.code()), s.message(), {}, std::move(instance));
}

ParsedProblem ParseProblem(std::string_view body) {
  ParsedProblem p;
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_object()) {
    auto str = [&](const char* k) {
      auto it = j.find(k);
      return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    p.type = str("type");
    p.title = str("title");
    p.detail = str("detail");
    auto st = j.find("status");
    if (st != j.end() && st->is_number_integer()) p.status = st->get<int>();
  }
  if (p.type.empty() && p.detail.empty()) p.detail = std::string(body.substr(0, 512));
  return p;
}

}  // namespace herd::api
