// The worker protocol (docs/api.md "Worker protocol"): register, long-poll
// for a lease, heartbeat, complete or fail. The lease id is the fence: a
// heartbeat or result on a lease that is not current gets 410 Gone.
#include <nlohmann/json.hpp>

#include <charconv>

#include "api/routes/codec.h"
#include "api/routes/route_groups.h"
#include "api/routes/route_util.h"
#include "daemon/orchestrator.h"

namespace herd::api {

using nlohmann::json;

namespace {

// "30s", "500ms", "2" (seconds) → milliseconds.
Result<int64_t> ParseWait(const std::string& s) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  std::string unit(p, s.data() + s.size());
  if (ec != std::errc() || n < 0 || (unit != "" && unit != "s" && unit != "ms")) {
    return Status::InvalidArgument("query parameter 'wait': expected e.g. 30s or 500ms, got '" + s + "'");
  }
  return unit == "ms" ? n : n * 1000;
}

// 410 Gone for a lost lease, as the worker protocol promises.
Response Gone(const std::string& lease, const std::string& why) {
  Response r = MakeProblem(ProblemType::kFailedPrecondition, "lease " + lease + " " + why);
  r.status = 410;
  return r;
}

}  // namespace

Status AddWorkerRoutes(Router& r, const RouteCtx& c) {
  auto* orch = c.orch;
  const int64_t max_wait = c.opts.max_lease_wait_ms;
  RouteOptions worker{Role::kWorker};

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/workers", [orch](const Request& req) {
    auto body = ObjectBody(req);
    if (!body.ok()) return Problem(body.status());
    daemon::WorkerInfo w;
    Status s = OptString(*body, "name", &w.name);
    if (s.ok()) s = OptString(*body, "device", &w.device);
    if (s.ok()) s = OptString(*body, "version", &w.version);
    if (!s.ok()) return Problem(s);
    if (w.device.rfind("cuda", 0) == 0) w.device = "cuda";
    if (w.device != "cpu" && w.device != "cuda") {
      return Problem(Status::InvalidArgument("field 'device': must be cpu or cuda[:N], got '" + w.device + "'"));
    }
    if (body->contains("memory_bytes")) {
      if (!(*body)["memory_bytes"].is_number_integer()) {
        return Problem(Status::InvalidArgument("field 'memory_bytes': must be an integer"));
      }
      w.memory_bytes = (*body)["memory_bytes"].get<int64_t>();
    }
    if (w.name.empty()) w.name = req.remote;
    auto reg = orch->RegisterWorker(w);
    if (!reg.ok()) return Problem(reg.status());
    return JsonResponse(201, {{"worker", WorkerJson(*reg)}});
  }, worker));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/workers/{id}/lease", [orch, max_wait](const Request& req) {
    int64_t wait = 0;
    if (auto w = req.Query("wait")) {
      auto ms = ParseWait(*w);
      if (!ms.ok()) return Problem(ms.status());
      wait = std::min(*ms, max_wait);
    }
    auto lease = orch->Lease(req.Param("id"), wait);
    if (!lease.ok()) return Problem(lease.status());
    if (!lease->has_value()) return Response::Text(204, "");
    const daemon::Task& t = **lease;
    return JsonResponse(200, {{"task", TaskJson(t, true)},
                              {"lease", {{"id", t.lease_id}, {"expires_ms", t.lease_expires}}}});
  }, worker));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/leases/{lease}/heartbeat", [orch](const Request& req) {
    auto body = ObjectBody(req);
    if (!body.ok()) return Problem(body.status());
    std::string progress = body->contains("progress") ? (*body)["progress"].dump() : "";
    auto hb = orch->Heartbeat(req.Param("lease"), progress);
    if (!hb.ok()) return Gone(req.Param("lease"), "is not current: drop the task");
    return JsonResponse(200, {{"cancel", hb->cancel}, {"lease_expires_ms", hb->lease_expires}});
  }, worker));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/leases/{lease}/complete", [orch](const Request& req) {
    auto body = ObjectBody(req);
    if (!body.ok()) return Problem(body.status());
    const std::string& lease = req.Param("lease");
    if (orch->scheduler()->CheckLease(lease) == daemon::LeaseCheck::kUnknown) {
      return Gone(lease, "is unknown");
    }
    json result = body->contains("result") ? (*body)["result"] : json::object();
    auto done = orch->Complete(lease, result.dump());
    if (!done.ok()) {
      if (done.status().code() == Status::Code::kFailedPrecondition) return Gone(lease, "is not current");
      Response p = Problem(done.status());
      if (p.status == 400) {
        p = MakeProblem(ProblemType::kUnprocessable, done.status().message());
      }
      return p;
    }
    return JsonResponse(200, {{"outcome", *done == daemon::CompleteOutcome::kCompleted ? "completed"
                                                                                        : "already_done"}});
  }, worker));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/leases/{lease}/fail", [orch](const Request& req) {
    auto body = ObjectBody(req);
    if (!body.ok()) return Problem(body.status());
    std::string error;
    Status s = OptString(*body, "error", &error);
    if (!s.ok()) return Problem(s);
    bool retryable = true;
    if (body->contains("retryable")) {
      if (!(*body)["retryable"].is_boolean()) {
        return Problem(Status::InvalidArgument("field 'retryable': must be true or false"));
      }
      retryable = (*body)["retryable"].get<bool>();
    }
    s = orch->Fail(req.Param("lease"), error.empty() ? "worker reported failure" : error, retryable);
    if (!s.ok()) return Gone(req.Param("lease"), "is not current");
    return JsonResponse(200, {{"outcome", "recorded"}});
  }, worker));
  return Status::Ok();
}

}  // namespace herd::api
