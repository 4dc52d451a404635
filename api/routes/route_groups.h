#pragma once
// The route groups AddDaemonRoutes registers (one file each).
#include "api/routes/daemon_routes.h"

namespace herd::api {

struct RouteCtx {
  daemon::Orchestrator* orch;
  daemon::Reader* reader;
  daemon::IdempotencyLog* idempotency;
  daemon::Backups* backups;
  metrics::Registry* metrics;
  DaemonRoutesOptions opts;
};

Status AddRunRoutes(Router& r, const RouteCtx& c);
Status AddUploadRoutes(Router& r, const RouteCtx& c);
Status AddWorkerRoutes(Router& r, const RouteCtx& c);
Status AddExportRoutes(Router& r, const RouteCtx& c);

}  // namespace herd::api
