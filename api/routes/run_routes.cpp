// Runs, rounds, stages, annotation requests and the read-only listings.
#include <nlohmann/json.hpp>

#include "api/ingest/upload.h"
#include "api/routes/record_json.h"
#include "api/routes/route_groups.h"
#include "api/routes/route_util.h"
#include "daemon/orchestrator.h"
#include "daemon/reader.h"

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
Response PageResponse(const Result<daemon::Page<T>>& page, const char* key, F to_json) {
  if (!page.ok()) return Problem(page.status());
  json items = json::array();
  for (const auto& x : page->items) items.push_back(to_json(x));
  json j = {{key, items}};
  if (!page->next_page_token.empty()) j["next_page_token"] = page->next_page_token;
  return JsonResponse(200, j);
}

}  // namespace

Status AddRunRoutes(Router& r, const RouteCtx& c) {
  auto* orch = c.orch;
  auto* reader = c.reader;
  RouteOptions admin{Role::kAdmin};
  RouteOptions viewer{Role::kViewer};
  RouteOptions annotator{Role::kAnnotator};

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/runs", [orch](const Request& req) {
    if (auto j = ParseJson(req.body); !j.ok()) return Problem(j.status());  // names the byte
    auto run = orch->CreateRun(req.body);
    if (!run.ok()) return Problem(run.status());
    return JsonResponse(201, {{"run", RunJson(*run)}});
  }, admin));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    return PageResponse(reader->ListRuns(*p), "runs", RunJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}", [orch, reader](const Request& req) {
    const std::string& run = req.Param("run");
    auto p = orch->Progress(run);
    if (!p.ok()) return Problem(p.status());
    auto tasks = reader->ListTasks({run, std::nullopt});
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
                               [orch, reader, v](const Request& req) {
      Status s = (orch->*v.fn)(req.Param("run"));
      if (!s.ok()) return Problem(s);
      auto run = reader->GetRun(req.Param("run"));
      if (!run.ok()) return Problem(run.status());
      return JsonResponse(200, {{"run", RunJson(*run)}});
    }, admin));
  }

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/rounds", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    return PageResponse(reader->ListRounds(req.Param("run"), *p), "rounds", RoundJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/rounds/{n}", [reader](const Request& req) {
    auto n = RoundParam(req);
    if (!n.ok()) return Problem(n.status());
    auto round = reader->GetRound(req.Param("run"), *n);
    if (!round.ok()) return Problem(round.status());
    return JsonResponse(200, {{"round", RoundJson(*round)}});
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/runs/{run}/rounds/{n}/stages/{stage}:retry",
                             [orch, reader](const Request& req) {
    auto n = RoundParam(req);
    if (!n.ok()) return Problem(n.status());
    Status s = orch->RetryStage(req.Param("run"), *n, req.Param("stage"));
    if (!s.ok()) return Problem(s);
    auto round = reader->GetRound(req.Param("run"), *n);
    if (!round.ok()) return Problem(round.status());
    return JsonResponse(200, {{"round", RoundJson(*round)}});
  }, admin));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/rounds/{n}/sft-data", [reader](const Request& req) {
    auto n = RoundParam(req);
    if (!n.ok()) return Problem(n.status());
    std::string out;
    Status st = reader->ForEachSftExample(req.Param("run"), *n, [&](const daemon::SftExample& e) {
      AppendJsonLine(SftExampleJson(e), &out);
      return true;
    });
    if (!st.ok()) return Problem(st);
    return Response::Text(200, std::move(out), "application/x-ndjson");
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/annotation-requests", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    std::string state = req.Query("state").value_or("");
    if (!state.empty() && state != "pending" && state != "answered" && state != "expired") {
      return Problem(Status::InvalidArgument(
          "query parameter 'state': must be pending, answered or expired, got '" + state + "'"));
    }
    return PageResponse(reader->ListAnnotationRequests(req.Param("run"), state, *p),
                        "annotation_requests", RequestJson);
  }, annotator));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/runs/{run}/annotation-requests/{id}:answer",
                             [orch, reader, metrics = c.metrics](const Request& req) {
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
    ingest::CountAnnotations(metrics, "answered", 1);
    auto q = reader->GetAnnotationRequest(req.Param("run"), req.Param("id"));
    if (!q.ok()) return Problem(q.status());
    return JsonResponse(200, {{"annotation_request", RequestJson(*q)}});
  }, annotator));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/samples", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    auto round = UintQuery(req, "round");
    if (!round.ok()) return Problem(round.status());
    return PageResponse(reader->ListSamples(req.Param("run"), *round, *p), "samples", SampleJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/pairs", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    auto round = UintQuery(req, "round");
    if (!round.ok()) return Problem(round.status());
    return PageResponse(reader->ListPairs(req.Param("run"), *round, *p), "pairs", PairJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/checkpoints", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    return PageResponse(reader->ListCheckpoints(req.Param("run"), *p), "checkpoints", CheckpointJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/events", [reader](const Request& req) {
    auto p = PageFromQuery(req);
    if (!p.ok()) return Problem(p.status());
    return PageResponse(reader->ListEvents(req.Param("run"), *p), "events", EventJson);
  }, viewer));

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/tasks", [reader](const Request& req) {
    daemon::TaskFilter f;
    f.run = req.Query("run").value_or("");
    std::string state = req.Query("state").value_or("");
    daemon::TaskState st{};
    if (!state.empty()) {
      if (!daemon::ParseTaskState(state, &st)) {
        return Problem(Status::InvalidArgument("query parameter 'state': unknown task state '" + state + "'"));
      }
      f.state = st;
    }
    auto tasks = reader->ListTasks(f);
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

Status AddDaemonRoutes(Router& router, const DaemonParts& parts, metrics::Registry* metrics,
                       DaemonRoutesOptions opts) {
  RouteCtx c{parts.orch, parts.reader, parts.idempotency, parts.backups, metrics, opts};
  HERD_RETURN_IF_ERROR(AddRunRoutes(router, c));
  HERD_RETURN_IF_ERROR(AddUploadRoutes(router, c));
  HERD_RETURN_IF_ERROR(AddExportRoutes(router, c));
  return AddWorkerRoutes(router, c);
}

}  // namespace herd::api
