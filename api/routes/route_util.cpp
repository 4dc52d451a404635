#include "api/routes/route_util.h"

#include <charconv>

namespace herd::api {

Result<std::optional<uint32_t>> UintQuery(const Request& req, const char* name) {
  auto v = req.Query(name);
  if (!v) return std::optional<uint32_t>();
  uint32_t x = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
  if (ec != std::errc() || p != v->data() + v->size()) {
    return Status::InvalidArgument(std::string("query parameter '") + name +
                                   "': must be a non-negative integer, got '" + *v + "'");
  }
  return std::optional<uint32_t>(x);
}

Result<daemon::PageRequest> PageFromQuery(const Request& req) {
  daemon::PageRequest p;
  HERD_ASSIGN_OR_RETURN(auto size, UintQuery(req, "page_size"));
  if (size) p.page_size = *size;
  if (auto t = req.Query("page_token")) p.page_token = *t;
  return p;
}

Result<nlohmann::json> ObjectBody(const Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  HERD_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(req.body));
  if (!j.is_object()) {
    return Status::InvalidArgument("body: must be a JSON object, got " + JsonTypeName(j));
  }
  return j;
}

Status OptString(const nlohmann::json& j, const char* field, std::string* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) {
    return Status::InvalidArgument(std::string("field '") + field + "': must be a string, got " +
                                   JsonTypeName(*it));
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

}  // namespace herd::api
