// Runs, rounds, stages, annotation requests and the read-only listings.
#include <nlohmann/json.hpp>

#include <sstream>

#include "api/routes/codec.h"
#include "api/routes/route_groups.h"
#include "api/routes/route_util.h"
#include "daemon/orchestrator.h"
#include "stores/jsonl.h"
#include "stores/store.h"

namespace herd::api {

using nlohmann::json;

namespace {

Result<uint32_t> RoundParam(const Request& req) {
  const std::string& s = req.Param("n");
  uint32_t n = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9' || n > 100000) {
      return Status::InvalidArgument("round '" + s + "': must be a positive integer");
    }
    n = n * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (s.empty() || n == 0) return Status::InvalidArgument("round '" + s + "': must be a positive integer");
  return n;
}

// A listing: items converted by `to_json`, under `key`.
template <typename T, typename F>
Response PageResponse(const Result<stores::Page<T>>& page, const char* key, F to_json) {
  if (!page.ok()) return Problem(page.status());
  json items = json::array();
  for (const auto& x : page->items) items.push_back(to_json(x));
  json j = {{key, items}};
  if (!page->next_page_token.empty()) j["next_page_token"] = page->next_page_token;
  return JsonResponse(200, j);
}

json ParsedToJson(const std::string& s) { return json::parse(s, nullptr, false); }

}  // namespace

Status AddRunRoutes(Router& r, const RouteCtx& c) {
  auto* orch = c.orch;
  auto* store = c.store;
  RouteOptions admin{Role::kAdmin};
  RouteOptions viewer{Role::kViewer};
  RouteOptions annotator{Role::kAnnotator};

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/runs", [orch](const Request& req) {
    if (auto j = ParseJson(req.body); !j.ok()) return Problem(j.status());  // names the byte
    auto run = orch->CreateRun(req.body);
    if (!run.ok()) return Problem(run.status());
    return JsonResponse(201, {{"run", RunJson(*run)}});
  }, admin));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    return PageResponse(store->ListRuns(*p), "runs", RunJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}", [orch](const Request& req) {
    const std::string& run = req.Param("run");
    auto p = orch->Progress(run);
    if (!p.ok()) return Problem(p.status());
    auto tasks = orch->scheduler()->List([&](const daemon::Task& t) { return t.run == run; });
    return JsonResponse(200, {{"run", ProgressJson(*p, tasks)}});
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("DELETE", "/v1/runs/{run}", [orch](const Request& req) {
    Status s = orch->DeleteRun(req.Param("run"));
    if (!s.ok()) return Problem(s);
    return Response::Text(204, "");
  }, admin));

  struct Verb {
    const char* name;
    Status (daemon::Orchestrator::*fn)(const std::string&);
  };
  for (Verb v : {Verb{"start", &daemon::Orchestrator::StartRun},
                 Verb{"pause", &daemon::Orchestrator::PauseRun},
                 Verb{"resume", &daemon::Orchestrator::ResumeRun},
                 Verb{"cancel", &daemon::Orchestrator::CancelRun}}) {
    HERD_RETURN_IF_ERROR(r.Add("POST", std::string("/v1/runs/{run}:") + v.name,
                               [orch, v](const Request& req) {
      Status s = (orch->*v.fn)(req.Param("run"));
      if (!s.ok()) return Problem(s);
      auto run = orch->store()->GetRun(req.Param("run"));
      if (!run.ok()) return Problem(run.status());
      return JsonResponse(200, {{"run", RunJson(*run)}});
    }, admin));
  }

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/rounds", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    return PageResponse(store->ListRounds(req.Param("run"), *p), "rounds", RoundJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/rounds/{n}", [store](const Request& req) {
    auto n = RoundParam(req);
    if (!n.ok()) return Problem(n.status());
    auto round = store->GetRound(req.Param("run"), *n);
    if (!round.ok()) return Problem(round.status());
    return JsonResponse(200, {{"round", RoundJson(*round)}});
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/runs/{run}/rounds/{n}/stages/{stage}:retry",
                             [orch](const Request& req) {
    auto n = RoundParam(req);
    if (!n.ok()) return Problem(n.status());
    Status s = orch->RetryStage(req.Param("run"), *n, req.Param("stage"));
    if (!s.ok()) return Problem(s);
    auto round = orch->store()->GetRound(req.Param("run"), *n);
    if (!round.ok()) return Problem(round.status());
    return JsonResponse(200, {{"round", RoundJson(*round)}});
  }, admin));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/rounds/{n}/sft-data", [store](const Request& req) {
    auto n = RoundParam(req);
    if (!n.ok()) return Problem(n.status());
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    std::ostringstream out;
    auto st = stores::ExportSftSetJsonl(*store, req.Param("run"), *n, out);
    if (!st.ok()) return Problem(st.status());
    return Response::Text(200, out.str(), "application/x-ndjson");
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/annotation-requests", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    std::string state = req.Query("state").value_or("");
    if (!state.empty() && state != "pending" && state != "answered" && state != "expired") {
      return Problem(Status::InvalidArgument(
          "query parameter 'state': must be pending, answered or expired, got '" + state + "'"));
    }
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    return PageResponse(store->ListAnnotationRequests(req.Param("run"), state, *p),
                        "annotation_requests", RequestJson);
  }, annotator));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/runs/{run}/annotation-requests/{id}:answer",
                             [orch](const Request& req) {
    auto body = ObjectBody(req);
    if (!body.ok()) return Problem(body.status());
    daemon::Answer a;
    std::string edited;
    Status s = OptString(*body, "choice", &a.choice);
    if (s.ok()) s = OptString(*body, "strength", &a.strength);
    if (s.ok()) s = OptString(*body, "annotator", &a.annotator);
    if (s.ok()) s = OptString(*body, "edited", &edited);
    if (!s.ok()) return Problem(s);
    if (a.choice.empty()) return Problem(Status::InvalidArgument("field 'choice': required (\"a\" or \"b\")"));
    if (!edited.empty()) a.edited = edited;
    if (a.annotator.empty()) a.annotator = req.principal;
    s = orch->AnswerRequest(req.Param("run"), req.Param("id"), a);
    if (!s.ok()) return Problem(s);
    auto q = orch->store()->GetAnnotationRequest(req.Param("run"), req.Param("id"));
    if (!q.ok()) return Problem(q.status());
    return JsonResponse(200, {{"annotation_request", RequestJson(*q)}});
  }, annotator));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/samples", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    auto round = UintQuery(req, "round");
    if (!round.ok()) return Problem(round.status());
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    return PageResponse(store->ListSamples(req.Param("run"), *round, *p), "samples",
                        [](const stores::Sample& s) { return ParsedToJson(stores::ToJson(s)); });
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/pairs", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    auto round = UintQuery(req, "round");
    if (!round.ok()) return Problem(round.status());
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    return PageResponse(store->ListPairs(req.Param("run"), *round, *p), "pairs",
                        [](const stores::Pair& x) { return ParsedToJson(stores::ToJson(x)); });
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/checkpoints", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    return PageResponse(store->ListCheckpoints(req.Param("run"), *p), "checkpoints", CheckpointJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/events", [store](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    if (auto run = store->GetRun(req.Param("run")); !run.ok()) return Problem(run.status());
    return PageResponse(store->ListEvents(req.Param("run"), *p), "events", EventJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/tasks", [orch](const Request& req) {
    std::string run = req.Query("run").value_or("");
    std::string state = req.Query("state").value_or("");
    daemon::TaskState st{};
    if (!state.empty() && !daemon::ParseTaskState(state, &st)) {
      return Problem(Status::InvalidArgument("query parameter 'state': unknown task state '" + state + "'"));
    }
    auto tasks = orch->scheduler()->List([&](const daemon::Task& t) {
      return (run.empty() || t.run == run) && (state.empty() || t.state == st);
    });
    json a = json::array();
    for (const auto& t : tasks) a.push_back(TaskJson(t, false));
    return JsonResponse(200, {{"tasks", a}});
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/workers", [orch](const Request&) {
    json a = json::array();
    for (const auto& w : orch->Workers()) a.push_back(WorkerJson(w));
    return JsonResponse(200, {{"workers", a}});
  }, viewer));
  return Status::Ok();
}

Status AddDaemonRoutes(Router& router, daemon::Orchestrator* orch, stores::Store* store,
                       metrics::Registry* metrics, DaemonRoutesOptions opts) {
  RouteCtx c{orch, store, metrics, opts};
  HERD_RETURN_IF_ERROR(AddRunRoutes(router, c));
  HERD_RETURN_IF_ERROR(AddUploadRoutes(router, c));
  return AddWorkerRoutes(router, c);
}

}  // namespace herd::api
