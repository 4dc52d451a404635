#pragma once
// The routes every herdd serves regardless of the daemon: health, readiness
// and the Prometheus scrape endpoint. They are in api/openapi.yaml.
#include <functional>

#include "api/server/router.h"
#include "common/status.h"

namespace herd::metrics {
class Registry;
}

namespace herd::api {

// GET /healthz (public): 200 {"status":"ok"} while the process serves.
// GET /readyz (public): 200 when ready() is OK, else 503 problem+json with
//   its message (e.g. "store not open"); ready may be empty (always ready).
// GET /metrics (viewer): registry->Serialize() (prometheus::TextSerializer),
//   text format 0.0.4; omitted when registry is null.
Status AddBuiltinRoutes(Router& router, metrics::Registry* registry,
                        std::function<Status()> ready = {});

}  // namespace herd::api
