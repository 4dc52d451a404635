#include "api/server/builtin_routes.h"

#include "api/metrics/registry.h"
#include "api/wire/problem.h"

namespace herd::api {

Status AddBuiltinRoutes(Router& router, metrics::Registry* registry,
                        std::function<Status()> ready) {
  RouteOptions open;
  open.public_route = true;
  HERD_RETURN_IF_ERROR(router.Add(
      "GET", "/healthz", [](const Request&) { return Response::Json(200, R"({"status":"ok"})"); },
      open));
  HERD_RETURN_IF_ERROR(router.Add(
      "GET", "/readyz",
      [ready = std::move(ready)](const Request&) {
        Status st = ready ? ready() : Status::Ok();
        if (!st.ok()) return MakeProblem(ProblemType::kUnavailable, "not ready: " + st.message());
        return Response::Json(200, R"({"status":"ready"})");
      },
      open));
  if (registry != nullptr) {
    RouteOptions viewer;
    viewer.role = Role::kViewer;
    HERD_RETURN_IF_ERROR(router.Add(
        "GET", "/metrics",
        [registry](const Request&) {
          return Response::Text(200, registry->Serialize(), metrics::kExpositionContentType);
        },
        viewer));
  }
  return Status::Ok();
}

}  // namespace herd::api
