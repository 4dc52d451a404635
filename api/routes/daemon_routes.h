#pragma once
// The REST routes that adapt wire JSON to the daemon (runs, rounds, data,
// annotation requests, listings, exports, backups, the worker protocol).
// Every route is in api/openapi.yaml; docs/api.md describes the bodies.
// Routes see only daemon types: writes go to the Orchestrator, reads to the
// Reader; nothing here reaches the store or the scheduler directly.
#include "api/server/router.h"
#include "common/status.h"

namespace herd::daemon {
class Orchestrator;
class Reader;
class IdempotencyLog;
class Backups;
}  // namespace herd::daemon
namespace herd::metrics {
class Registry;
}

namespace herd::api {

// The daemon objects the routes use; none is owned, all outlive the server.
struct DaemonParts {
  daemon::Orchestrator* orch = nullptr;          // runs, uploads, the worker protocol
  daemon::Reader* reader = nullptr;              // every read
  daemon::IdempotencyLog* idempotency = nullptr; // Idempotency-Key answers of uploads
  daemon::Backups* backups = nullptr;            // POST /v1/backups
};

struct DaemonRoutesOptions {
  // Longest long poll a worker may ask for with ?wait=. Default: 30 s.
  int64_t max_lease_wait_ms = 30'000;
  // Line errors listed in an upload reply (the counts stay exact). Default: 1000.
  size_t max_listed_errors = 1000;
  // Largest JSONL line accepted in uploads. Default: 1 MiB.
  size_t max_line_bytes = 1u << 20;
};

// metrics may be null (no herd_annotations_total etc.).
Status AddDaemonRoutes(Router& router, const DaemonParts& parts, metrics::Registry* metrics,
                       DaemonRoutesOptions opts = {});

// Registers the daemon's gauges (tasks, workers, run rounds, store sizes)
// as a collect hook on the registry.
void AddDaemonMetrics(metrics::Registry* registry, const DaemonParts& parts);

}  // namespace herd::api
