#pragma once
// The REST routes that adapt wire JSON to the daemon (runs, rounds, data,
// annotation requests, listings, the worker protocol). Every route is in
// api/openapi.yaml; docs/api.md describes the bodies.
#include "api/server/router.h"
#include "common/status.h"

namespace herd::daemon {
class Orchestrator;
}
namespace herd::stores {
class Store;
}
namespace herd::metrics {
class Registry;
}

namespace herd::api {

struct DaemonRoutesOptions {
  // Longest long poll a worker may ask for with ?wait=. Default: 30 s.
  int64_t max_lease_wait_ms = 30'000;
  // Line errors listed in an upload reply (the counts stay exact). Default: 1000.
  size_t max_listed_errors = 1000;
  // Largest JSONL line accepted in uploads. Default: 1 MiB.
  size_t max_line_bytes = 1u << 20;
};

// metrics may be null (no herd_annotations_total etc.).
Status AddDaemonRoutes(Router& router, daemon::Orchestrator* orch, stores::Store* store,
                       metrics::Registry* metrics, DaemonRoutesOptions opts = {});

// Registers the daemon's gauges (tasks, workers, run rounds, store sizes)
// as a collect hook on the registry.
void AddDaemonMetrics(metrics::Registry* registry, daemon::Orchestrator* orch, stores::Store* store);

}  // namespace herd::api
